//! ROS 2 names: validation of node names, namespaces and topic names, expansion
//! of relative (`chatter`) and private (`~/chatter`) names, and remapping.

/// A node name, namespace or topic name that rcl would refuse: tokens of
/// letters, digits and single `_`, not starting with a digit, joined by `/`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{name}' is not a valid name: {reason}")]
pub struct NameError {
    /// The name as given.
    pub name: String,
    /// The rule of ROS names it breaks.
    pub reason: String,
}

fn err(name: &str, reason: &str) -> NameError {
    NameError { name: name.to_string(), reason: reason.to_string() }
}

fn check_token(name: &str, token: &str) -> Result<(), NameError> {
    if token.is_empty() {
        return Err(err(name, "empty token (repeated or trailing '/')"));
    }
    if token.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err(name, "a token starts with a digit"));
    }
    if !token.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(err(name, "only letters, digits, '_' and '/' are allowed"));
    }
    if token.contains("__") {
        return Err(err(name, "repeated '_'"));
    }
    Ok(())
}

/// A node's base name: one token.
pub(crate) fn validate_node_name(name: &str) -> Result<(), NameError> {
    if name.contains('/') {
        return Err(err(name, "a node name has no '/' (use a namespace)"));
    }
    check_token(name, name)
}

/// Normalizes a namespace to an absolute form without trailing '/': `x` → `/x`, `` → `/`.
pub(crate) fn normalize_namespace(ns: &str) -> Result<String, NameError> {
    let trimmed = ns.trim_end_matches('/');
    if trimmed.is_empty() {
        return Ok("/".to_string());
    }
    let abs = if trimmed.starts_with('/') { trimmed.to_string() } else { format!("/{trimmed}") };
    for token in abs[1..].split('/') {
        check_token(ns, token)?;
    }
    Ok(abs)
}

/// Expands a topic or service name against a node's namespace and name:
/// `/abs` stays, `rel` → `<ns>/rel`, `~/p` → `<ns>/<node>/p`.
pub(crate) fn expand(name: &str, namespace: &str, node: &str) -> Result<String, NameError> {
    if name.is_empty() {
        return Err(err(name, "empty"));
    }
    let ns = if namespace == "/" { "" } else { namespace };
    let full = if let Some(rest) = name.strip_prefix("~/") {
        format!("{ns}/{node}/{rest}")
    } else if name == "~" {
        format!("{ns}/{node}")
    } else if name.starts_with('/') {
        name.to_string()
    } else {
        format!("{ns}/{name}")
    };
    if full.len() > 1 && full.ends_with('/') {
        return Err(err(name, "ends with '/'"));
    }
    for token in full[1..].split('/') {
        check_token(name, token)?;
    }
    Ok(full)
}

/// One `-r from:=to` rule, optionally for one node only (`node:from:=to`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remap {
    pub node: Option<String>,
    pub from: String,
    pub to: String,
}

impl Remap {
    /// Parses `from:=to` or `node:from:=to`.
    pub(crate) fn parse(rule: &str) -> Option<Remap> {
        let (lhs, to) = rule.split_once(":=")?;
        let (node, from) = match lhs.split_once(':') {
            Some((n, f)) => (Some(n.to_string()), f),
            None => (None, lhs),
        };
        if from.is_empty() || to.is_empty() {
            return None;
        }
        Some(Remap { node, from: from.to_string(), to: to.to_string() })
    }

    pub(crate) fn applies_to(&self, node: &str) -> bool {
        self.node.as_deref().is_none_or(|n| n == node)
    }
}

/// Applies the first matching remap rule to an expanded name (rcl semantics:
/// both sides are expanded in the node's namespace, the first match wins).
pub(crate) fn remap(full: &str, rules: &[Remap], namespace: &str, node: &str) -> Result<String, NameError> {
    for r in rules.iter().filter(|r| r.applies_to(node)) {
        if r.from.starts_with("__") {
            continue;
        }
        if expand(&r.from, namespace, node)? == full {
            return expand(&r.to, namespace, node);
        }
    }
    Ok(full.to_string())
}

/// Joins namespace and node name: `/ns` + `n` → `/ns/n`, `/` + `n` → `/n`.
pub(crate) fn fully_qualified(namespace: &str, node: &str) -> String {
    if namespace == "/" {
        format!("/{node}")
    } else {
        format!("{namespace}/{node}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_follows_ros2() {
        assert_eq!(expand("chatter", "/", "talker").unwrap(), "/chatter");
        assert_eq!(expand("chatter", "/robot", "talker").unwrap(), "/robot/chatter");
        assert_eq!(expand("~/state", "/robot", "talker").unwrap(), "/robot/talker/state");
        assert_eq!(expand("/abs/x", "/robot", "talker").unwrap(), "/abs/x");
        assert!(expand("a//b", "/", "n").is_err());
        assert!(expand("1abc", "/", "n").is_err());
        assert!(expand("a-b", "/", "n").is_err());
        assert_eq!(normalize_namespace("robot/").unwrap(), "/robot");
        assert_eq!(normalize_namespace("").unwrap(), "/");
    }

    #[test]
    fn remaps_match_expanded_names() {
        let rules = vec![Remap::parse("chatter:=/out").unwrap(), Remap::parse("other:x:=y").unwrap()];
        assert_eq!(remap("/ns/chatter", &rules, "/ns", "talker").unwrap(), "/out");
        assert_eq!(remap("/ns/x", &rules, "/ns", "talker").unwrap(), "/ns/x");
        assert_eq!(remap("/ns/x", &rules, "/ns", "other").unwrap(), "/ns/y");
        assert_eq!(Remap::parse("nope"), None);
    }
}
