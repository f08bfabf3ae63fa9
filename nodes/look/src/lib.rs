//! The prompt vocabulary: a text prompt ("icy road, night, wet reflections,
//! headlight glare, light snowfall") parsed into a [`Look`], the appearance
//! the restyling aims for.
//!
//! A prompt is a list of clauses separated by commas, semicolons or "and".
//! Each clause holds terms of the vocabulary (one or two words) and intensity
//! modifiers ("light", "moderate", "heavy", …) that apply to the next weather
//! or effect term of the same clause. Filler words ("road", "the", "with", …)
//! are accepted; every other word is reported in [`Parsed::unknown`].
//!
//! The transfer stage restyles frames to a look; the curator balances
//! datasets on the tags a look names ([`Look::weather_tag`],
//! [`Look::time_tag`]); the data factory samples looks from the vocabulary.

#![warn(missing_docs)]

use std::fmt;

/// Time of day, which sets the sun, the sky and the exposure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeOfDay {
    /// The sun just above the horizon, before the morning.
    Dawn,
    /// The sun a quarter of the way up.
    Morning,
    /// The sun high.
    Noon,
    /// The sun halfway down.
    Afternoon,
    /// The sun just below the horizon: dark, lights on.
    Dusk,
    /// Dark: headlights and street lights only.
    Night,
}

impl TimeOfDay {
    /// Sun elevation in degrees (negative: below the horizon).
    pub fn sun_elevation(self) -> f32 {
        match self {
            TimeOfDay::Dawn => 4.0,
            TimeOfDay::Morning => 25.0,
            TimeOfDay::Noon => 60.0,
            TimeOfDay::Afternoon => 35.0,
            TimeOfDay::Dusk => -3.0,
            TimeOfDay::Night => -30.0,
        }
    }

    /// Whether it is dark enough for lights (dusk and night).
    pub fn is_dark(self) -> bool {
        matches!(self, TimeOfDay::Dusk | TimeOfDay::Night)
    }
}

/// What falls from the sky.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precipitation {
    /// Nothing.
    None,
    /// Rain (streaks, splashes, a wet road).
    Rain,
    /// Snow (flakes, snow on surfaces).
    Snow,
}

/// The road's surface as it looks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// Dry asphalt.
    Dry,
    /// Wet: darker, with reflections.
    Wet,
    /// Ice: glossy and pale.
    Icy,
    /// Covered in snow.
    Snowy,
}

impl Surface {
    /// The road friction coefficient a surface that looks like this has in
    /// the data factory's sweeps with `friction_from_look` (typical tyre-road
    /// values: dry asphalt 0.8, wet 0.5, packed snow 0.3, ice 0.1), so that
    /// how the road looks and how it grips agree in the data.
    pub const fn friction(self) -> f64 {
        match self {
            Surface::Dry => 0.8,
            Surface::Wet => 0.5,
            Surface::Snowy => 0.3,
            Surface::Icy => 0.1,
        }
    }
}

/// The appearance a prompt asks for. Intensities run from 0 (off) to 1.
#[derive(Clone, Debug, PartialEq)]
pub struct Look {
    /// Time of day.
    pub time: TimeOfDay,
    /// What falls.
    pub precipitation: Precipitation,
    /// How much of it falls (light 0.3, moderate 0.6, heavy 1).
    pub precipitation_intensity: f32,
    /// Fog density.
    pub fog: f32,
    /// The road's surface.
    pub surface: Surface,
    /// Mirror-like reflections on the road (wet or icy), beyond what the surface implies.
    pub reflections: f32,
    /// Vehicles' headlights on (implied by a dark time of day).
    pub headlights: bool,
    /// Street lamps on.
    pub street_lights: bool,
    /// Glare around bright lights.
    pub glare: f32,
    /// Cloud cover: flat light, grey sky.
    pub overcast: f32,
    /// A low sun in the frame (long shadows, flare).
    pub low_sun: bool,
    /// A dashcam's look (vignette, compression, tint).
    pub dashcam: bool,
    /// Sensor noise.
    pub grain: f32,
    /// Motion blur.
    pub motion_blur: f32,
    /// Dirt on the lens.
    pub lens_dirt: f32,
}

impl Default for Look {
    fn default() -> Look {
        Look {
            time: TimeOfDay::Noon,
            precipitation: Precipitation::None,
            precipitation_intensity: 0.0,
            fog: 0.0,
            surface: Surface::Dry,
            reflections: 0.0,
            headlights: false,
            street_lights: false,
            glare: 0.0,
            overcast: 0.0,
            low_sun: false,
            dashcam: false,
            grain: 0.0,
            motion_blur: 0.0,
            lens_dirt: 0.0,
        }
    }
}

/// Length of [`Look::features`], the prompt as numbers (the ONNX backend's `look` input).
pub const LOOK_FEATURES: usize = 16;

impl Look {
    /// The look as a fixed vector: sun elevation / 90, dark, rain, snow, fog,
    /// wet, icy, snowy, reflections, headlights, street lights, glare,
    /// overcast, low sun, grain, motion blur (in this order).
    pub fn features(&self) -> [f32; LOOK_FEATURES] {
        let p = |k: Precipitation| if self.precipitation == k { self.precipitation_intensity } else { 0.0 };
        let s = |k: Surface| if self.surface == k { 1.0 } else { 0.0 };
        let b = |v: bool| if v { 1.0 } else { 0.0 };
        [
            self.time.sun_elevation() / 90.0,
            b(self.time.is_dark()),
            p(Precipitation::Rain),
            p(Precipitation::Snow),
            self.fog,
            s(Surface::Wet),
            s(Surface::Icy),
            s(Surface::Snowy),
            self.reflections,
            b(self.headlights),
            b(self.street_lights),
            self.glare,
            self.overcast,
            b(self.low_sun),
            self.grain,
            self.motion_blur,
        ]
    }
}

/// A parsed prompt: the look, and the words the vocabulary does not know.
#[derive(Clone, Debug, PartialEq)]
pub struct Parsed {
    /// The look the prompt describes.
    pub look: Look,
    /// Words that are neither vocabulary nor filler, in order.
    pub unknown: Vec<String>,
}

#[derive(Clone, Copy, Debug)]
enum Term {
    Time(TimeOfDay),
    Precip(Precipitation, Option<f32>),
    Fog(Option<f32>),
    Clear,
    Sunny,
    Surface(Surface),
    Reflections,
    Headlights,
    HeadlightGlare,
    StreetLights,
    Glare,
    Overcast,
    LowSun,
    Dashcam,
    Grain,
    MotionBlur,
    LensDirt,
}

/// Words that qualify the next term of their clause.
const MODIFIERS: &[(&str, f32)] = &[
    ("light", 0.3),
    ("slight", 0.3),
    ("thin", 0.3),
    ("faint", 0.3),
    ("some", 0.45),
    ("moderate", 0.6),
    ("steady", 0.6),
    ("medium", 0.6),
    ("heavy", 1.0),
    ("dense", 1.0),
    ("thick", 1.0),
    ("strong", 1.0),
    ("intense", 1.0),
    ("torrential", 1.0),
];

/// Words carrying no appearance of their own.
const FILLER: &[&str] = &[
    "a",
    "an",
    "the",
    "with",
    "on",
    "in",
    "at",
    "of",
    "by",
    "under",
    "during",
    "road",
    "roads",
    "street",
    "scene",
    "time",
    "weather",
    "very",
    "lots",
    "little",
    "bit",
    "surface",
    "conditions",
    "lighting",
    "camera",
    "view",
    "from",
    "falling",
    "city",
    "urban",
];

/// The vocabulary: two-word terms first, so "street lights" wins over "street".
const TWO_WORDS: &[(&str, &str, Term)] = &[
    ("street", "lights", Term::StreetLights),
    ("street", "light", Term::StreetLights),
    ("street", "lamps", Term::StreetLights),
    ("headlight", "glare", Term::HeadlightGlare),
    ("headlights", "glare", Term::HeadlightGlare),
    ("low", "sun", Term::LowSun),
    ("golden", "hour", Term::LowSun),
    ("black", "ice", Term::Surface(Surface::Icy)),
    ("motion", "blur", Term::MotionBlur),
    ("lens", "dirt", Term::LensDirt),
    ("dirty", "lens", Term::LensDirt),
    ("dash", "cam", Term::Dashcam),
    ("film", "grain", Term::Grain),
];

fn one_word(w: &str) -> Option<Term> {
    use Precipitation::{Rain, Snow};
    use TimeOfDay::*;
    Some(match w {
        "dawn" | "sunrise" => Term::Time(Dawn),
        "morning" => Term::Time(Morning),
        "noon" | "midday" | "day" | "daytime" | "daylight" => Term::Time(Noon),
        "afternoon" => Term::Time(Afternoon),
        "dusk" | "sunset" | "twilight" | "evening" => Term::Time(Dusk),
        "night" | "nighttime" | "midnight" | "dark" => Term::Time(Night),
        "rain" | "rainy" | "raining" | "rainfall" | "showers" => Term::Precip(Rain, None),
        "drizzle" => Term::Precip(Rain, Some(0.25)),
        "downpour" | "storm" | "rainstorm" => Term::Precip(Rain, Some(1.0)),
        "snow" | "snowing" | "snowfall" | "snowflakes" => Term::Precip(Snow, None),
        "blizzard" => Term::Precip(Snow, Some(1.0)),
        "fog" | "foggy" => Term::Fog(None),
        "mist" | "misty" | "haze" | "hazy" => Term::Fog(Some(0.3)),
        "clear" => Term::Clear,
        "sunny" => Term::Sunny,
        "icy" | "ice" | "frozen" | "frost" | "frosty" => Term::Surface(Surface::Icy),
        "wet" | "puddles" | "soaked" | "damp" => Term::Surface(Surface::Wet),
        "snowy" | "slush" | "slushy" | "snowcovered" => Term::Surface(Surface::Snowy),
        "dry" => Term::Surface(Surface::Dry),
        "reflections" | "reflective" | "reflection" | "glossy" => Term::Reflections,
        "headlights" | "headlight" | "headlamps" => Term::Headlights,
        "streetlights" | "streetlamps" | "lamps" | "streetlight" => Term::StreetLights,
        "glare" | "flare" | "bloom" => Term::Glare,
        "overcast" | "cloudy" | "grey" | "gray" | "gloomy" => Term::Overcast,
        "dashcam" => Term::Dashcam,
        "grain" | "grainy" | "noisy" | "noise" => Term::Grain,
        "blur" | "blurry" | "blurred" => Term::MotionBlur,
        "dirt" | "dirty" | "smudged" | "smudges" => Term::LensDirt,
        _ => return None,
    })
}

/// Parses a prompt. Never fails: words it does not know are listed in
/// [`Parsed::unknown`] (the node logs them), the rest still applies.
pub fn parse(prompt: &str) -> Parsed {
    let mut look = Look::default();
    let mut unknown = Vec::new();
    let mut time_set = false;
    let mut surface_set = false;
    let mut headlights_said = false;
    let lower = prompt.to_lowercase();
    for clause in lower.split([',', ';', '.', '\n']).flat_map(|c| c.split(" and ")) {
        let words: Vec<String> = clause
            .split(|c: char| !(c.is_alphanumeric() || c == '-'))
            .flat_map(|w| w.split('-'))
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect();
        let mut modifier: Option<f32> = None;
        let mut i = 0;
        while i < words.len() {
            let w = words[i].as_str();
            let next = words.get(i + 1).map(String::as_str);
            let mut term = None;
            if let Some(n) = next {
                if let Some((_, _, t)) = TWO_WORDS.iter().find(|(a, b, _)| *a == w && *b == n) {
                    term = Some(*t);
                    i += 1;
                }
            }
            if term.is_none() {
                if let Some((_, v)) = MODIFIERS.iter().find(|(m, _)| *m == w) {
                    // "light" alone at the end of a clause ("low light") is not a modifier.
                    if next.is_some() {
                        modifier = Some(*v);
                        i += 1;
                        continue;
                    }
                }
                term = one_word(w);
            }
            i += 1;
            let Some(term) = term else {
                if !FILLER.contains(&w) && !w.chars().all(|c| c.is_ascii_digit()) {
                    unknown.push(w.to_string());
                }
                continue;
            };
            let amount = |default: Option<f32>| modifier.or(default).unwrap_or(0.6);
            match term {
                Term::Time(t) => {
                    look.time = t;
                    time_set = true;
                }
                Term::Precip(p, d) => {
                    look.precipitation = p;
                    look.precipitation_intensity = amount(d);
                    if p == Precipitation::Snow && d == Some(1.0) {
                        look.fog = look.fog.max(0.4);
                    }
                }
                Term::Fog(d) => look.fog = amount(d),
                Term::Clear => {
                    look.precipitation = Precipitation::None;
                    look.precipitation_intensity = 0.0;
                    look.fog = 0.0;
                    look.overcast = 0.0;
                }
                Term::Sunny => {
                    look.overcast = 0.0;
                    if !time_set {
                        look.time = TimeOfDay::Noon;
                    }
                }
                Term::Surface(s) => {
                    look.surface = s;
                    surface_set = true;
                }
                Term::Reflections => look.reflections = amount(Some(0.8)),
                Term::Headlights => {
                    look.headlights = true;
                    headlights_said = true;
                }
                Term::HeadlightGlare => {
                    look.headlights = true;
                    headlights_said = true;
                    look.glare = amount(Some(0.8));
                }
                Term::StreetLights => look.street_lights = true,
                Term::Glare => look.glare = amount(Some(0.7)),
                Term::Overcast => look.overcast = amount(Some(0.8)),
                Term::LowSun => {
                    look.low_sun = true;
                    if !time_set {
                        look.time = TimeOfDay::Afternoon;
                    }
                }
                Term::Dashcam => look.dashcam = true,
                Term::Grain => look.grain = amount(Some(0.5)),
                Term::MotionBlur => look.motion_blur = amount(Some(0.6)),
                Term::LensDirt => look.lens_dirt = amount(Some(0.6)),
            }
            modifier = None;
        }
        if modifier.is_some() {
            // A modifier with nothing to modify ("heavy" alone) is not understood.
            unknown.push(format!("{} (modifies nothing)", clause.trim()));
        }
    }
    // What a prompt implies without saying it: rain wets the road, falling
    // snow covers it, a car drives with its headlights on after dark.
    if !surface_set {
        look.surface = match look.precipitation {
            Precipitation::Rain => Surface::Wet,
            Precipitation::Snow => Surface::Snowy,
            Precipitation::None => Surface::Dry,
        };
    }
    if look.time.is_dark() && !headlights_said {
        look.headlights = true;
    }
    if look.precipitation == Precipitation::Rain {
        look.overcast = look.overcast.max(0.5 * look.precipitation_intensity + 0.3);
    }
    Parsed { look, unknown }
}

impl Look {
    /// The weather a dataset is balanced on: rain, snow, fog or clear.
    pub fn weather_tag(&self) -> &'static str {
        match self.precipitation {
            Precipitation::Rain => "rain",
            Precipitation::Snow => "snow",
            Precipitation::None if self.fog >= 0.3 => "fog",
            Precipitation::None => "clear",
        }
    }

    /// The time of day a dataset is balanced on: dawn, day, dusk or night.
    pub fn time_tag(&self) -> &'static str {
        match self.time {
            TimeOfDay::Dawn => "dawn",
            TimeOfDay::Morning | TimeOfDay::Noon | TimeOfDay::Afternoon => "day",
            TimeOfDay::Dusk => "dusk",
            TimeOfDay::Night => "night",
        }
    }
}

impl fmt::Display for Look {
    /// A canonical description, e.g. "night, snow 0.30, icy, headlights, glare 0.80".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = vec![format!("{:?}", self.time).to_lowercase()];
        match self.precipitation {
            Precipitation::None => {}
            p => parts.push(format!("{} {:.2}", format!("{p:?}").to_lowercase(), self.precipitation_intensity)),
        }
        if self.fog > 0.0 {
            parts.push(format!("fog {:.2}", self.fog));
        }
        parts.push(format!("{:?}", self.surface).to_lowercase());
        let mut flag = |on: bool, name: &str| {
            if on {
                parts.push(name.to_string());
            }
        };
        flag(self.headlights, "headlights");
        flag(self.street_lights, "street lights");
        flag(self.low_sun, "low sun");
        flag(self.dashcam, "dashcam");
        for (v, name) in [
            (self.reflections, "reflections"),
            (self.glare, "glare"),
            (self.overcast, "overcast"),
            (self.grain, "grain"),
            (self.motion_blur, "motion blur"),
            (self.lens_dirt, "lens dirt"),
        ] {
            if v > 0.0 {
                parts.push(format!("{name} {v:.2}"));
            }
        }
        f.write_str(&parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issue_prompt() {
        let p = parse("icy road, night, wet reflections, headlight glare, light snowfall");
        assert!(p.unknown.is_empty(), "{:?}", p.unknown);
        let l = p.look;
        assert_eq!(l.time, TimeOfDay::Night);
        // "wet reflections" comes after "icy": the last surface said wins.
        assert_eq!(l.surface, Surface::Wet);
        assert!(l.reflections > 0.5);
        assert!(l.headlights);
        assert!(l.glare > 0.5);
        assert_eq!(l.precipitation, Precipitation::Snow);
        assert!((l.precipitation_intensity - 0.3).abs() < 1e-6);
    }

    #[test]
    fn modifiers_apply_to_their_clause_only() {
        let l = parse("heavy rain, fog, dusk").look;
        assert_eq!(l.precipitation, Precipitation::Rain);
        assert_eq!(l.precipitation_intensity, 1.0);
        assert_eq!(l.fog, 0.6);
        assert_eq!(l.surface, Surface::Wet, "rain wets the road");
        assert!(l.headlights, "headlights come on at dusk");
        let l = parse("dense fog and light rain").look;
        assert_eq!(l.fog, 1.0);
        assert_eq!(l.precipitation_intensity, 0.3);
    }

    #[test]
    fn unknown_words_are_reported() {
        let p = parse("night, purple unicorns, street lights, heavy, dense purple");
        assert_eq!(p.unknown, vec!["purple", "unicorns", "heavy", "purple", "dense purple (modifies nothing)"]);
        assert!(p.look.street_lights);
        assert_eq!(p.look.time, TimeOfDay::Night);
    }

    #[test]
    fn two_word_terms_and_defaults() {
        let l = parse("low sun, dashcam, motion blur, lens dirt, grainy").look;
        assert!(l.low_sun && l.dashcam);
        assert_eq!(l.time, TimeOfDay::Afternoon);
        assert!(l.motion_blur > 0.0 && l.lens_dirt > 0.0 && l.grain > 0.0);
        assert!(!l.headlights);
        let l = parse("").look;
        assert_eq!(l, Look::default());
        assert_eq!(parse("snowy").look.surface, Surface::Snowy);
        assert_eq!(parse("blizzard").look.surface, Surface::Snowy);
    }
}
