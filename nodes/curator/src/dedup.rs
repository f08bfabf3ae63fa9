//! Semantic deduplication: k-means over clip embeddings (deterministic
//! k-means++ seeding), then within each cluster, in order of quality, a clip
//! within `eps` cosine distance of one already kept is dropped as a duplicate of it.

use crate::embed::cosine_distance;

/// For every item: None (kept) or Some(index of the kept item it duplicates);
/// and the cluster of every item.
pub(crate) fn dedup(embeddings: &[Vec<f32>], quality: &[f32], k: usize, eps: f32, seed: u64) -> (Vec<Option<usize>>, Vec<usize>) {
    let n = embeddings.len();
    if n == 0 {
        return (Vec::new(), Vec::new());
    }
    let assign = kmeans(embeddings, k.clamp(1, n), seed);
    let mut out = vec![None; n];
    let clusters = assign.iter().max().map_or(0, |m| m + 1);
    for c in 0..clusters {
        let mut members: Vec<usize> = (0..n).filter(|&i| assign[i] == c).collect();
        // Best first; ties by position, so the result does not depend on anything else.
        members.sort_by(|&a, &b| quality[b].total_cmp(&quality[a]).then(a.cmp(&b)));
        let mut kept: Vec<usize> = Vec::new();
        for i in members {
            match kept.iter().find(|&&j| cosine_distance(&embeddings[i], &embeddings[j]) < eps) {
                Some(&j) => out[i] = Some(j),
                None => kept.push(i),
            }
        }
    }
    (out, assign)
}

fn next(state: &mut u64) -> u64 {
    // SplitMix64.
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn dist2(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Lloyd's k-means with k-means++ seeding; returns the cluster of each point.
fn kmeans(points: &[Vec<f32>], k: usize, seed: u64) -> Vec<usize> {
    let n = points.len();
    let mut rng = seed ^ 0x5eed;
    let mut centres: Vec<Vec<f32>> = vec![points[(next(&mut rng) % n as u64) as usize].clone()];
    while centres.len() < k {
        let d: Vec<f32> = points.iter().map(|p| centres.iter().map(|c| dist2(p, c)).fold(f32::MAX, f32::min)).collect();
        let total: f32 = d.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut r = (next(&mut rng) >> 11) as f32 / (1u64 << 53) as f32 * total;
        let mut pick = n - 1;
        for (i, di) in d.iter().enumerate() {
            if r < *di {
                pick = i;
                break;
            }
            r -= di;
        }
        centres.push(points[pick].clone());
    }
    let mut assign = vec![0usize; n];
    for _ in 0..50 {
        let mut changed = false;
        for (i, p) in points.iter().enumerate() {
            let best = (0..centres.len()).min_by(|&a, &b| dist2(p, &centres[a]).total_cmp(&dist2(p, &centres[b]))).unwrap();
            if best != assign[i] {
                assign[i] = best;
                changed = true;
            }
        }
        for (c, centre) in centres.iter_mut().enumerate() {
            let members: Vec<&Vec<f32>> = points.iter().zip(&assign).filter(|(_, &a)| a == c).map(|(p, _)| p).collect();
            if members.is_empty() {
                continue;
            }
            for (d, x) in centre.iter_mut().enumerate() {
                *x = members.iter().map(|m| m[d]).sum::<f32>() / members.len() as f32;
            }
        }
        if !changed {
            break;
        }
    }
    assign
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embed::normalize;

    #[test]
    fn near_copies_are_dropped_in_favour_of_the_better_one() {
        let mut pts = Vec::new();
        for i in 0..6 {
            let mut v: Vec<f32> = (0..8).map(|d| if d == i { 1.0 } else { 0.05 }).collect();
            normalize(&mut v);
            pts.push(v);
        }
        let mut copy = pts[2].clone();
        copy[0] += 0.01;
        normalize(&mut copy);
        pts.push(copy);
        let quality = vec![1.0, 1.0, 0.5, 1.0, 1.0, 1.0, 0.9];
        let (dup, _) = dedup(&pts, &quality, 3, 0.01, 7);
        // The copy (quality 0.9) is kept, the original (0.5) is its duplicate.
        assert_eq!(dup[2], Some(6));
        assert_eq!(dup.iter().filter(|d| d.is_some()).count(), 1);
    }
}
