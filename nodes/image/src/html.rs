//! Pieces of the static HTML reports (curator, closed-loop evaluation):
//! text escaped for HTML and pictures inlined as PNG data URIs, so that a
//! report is one file that opens offline.

use base64::Engine as _;

use crate::Rgb;

/// `s` with the characters HTML gives a meaning (& < > ") escaped.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A `data:image/png;base64,…` URI of the picture.
pub fn png_data_uri(t: &Rgb) -> String {
    format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(crate::encode_png(t)))
}
