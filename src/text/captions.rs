//! Stage 1, first half: which lines of a news article are photo captions, and their
//! cleaning (credit tags and position markers removed).

use regex::Regex;
use std::sync::OnceLock;

/// Substrings that mark a line of an article as a photo caption (the paper's list).
#[rustfmt::skip]
pub const CAPTION_MARKERS: &[&str] = &[
    "(left)", "(right)", "(center)", ", left,", ", right,", ", center,", ", centre,",
    ", pictured,", "Photo:", "PHOTO: ", "Photo by", "Image copyright", "Getty ", "AP Photo",
    "AP Image",
];

/// Lines this long or longer are not captions.
pub const MAX_CAPTION_CHARS: usize = 1000;

pub fn is_caption_line(line: &str) -> bool {
    line.chars().count() < MAX_CAPTION_CHARS && CAPTION_MARKERS.iter().any(|m| line.contains(m))
}

fn cleaning_rules() -> &'static [(Regex, &'static str)] {
    static RULES: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    RULES.get_or_init(|| {
        let rules: &[(&str, &str)] = &[
            // The paper's rules, in its order.
            (r", (left|right|center|centre), ", " "),
            (r" \((left|right|center|centre)\)", " "),
            (r"\((AP ?)Photo.*\)", ""),
            (r"\(Image.*\)", ""),
            (r"\(Photo.*\)", ""),
            (r"\(Credit.*\)", ""),
            (r"\[(Featured )?Image.*\]", ""),
            (r"\(?Getty Images\)?$", ""),
            (r"Image copyright .* Image caption", ""),
            (r"Photo: AF?PP?$", ""),
            (r"FILE PHOTO:", ""),
            (r"^Photo:", ""),
            (r"Image \d+ of \d+", " "),
            // Credits the paper's rules leave behind: a trailing `Photo: Reuters`,
            // `Photo by Jane Doe/AFP`, `Image copyright Getty Images` without a caption
            // label, and position markers at the start of a line.
            (r"\bPhoto: [A-Z][\w/&.'-]*( [A-Z][\w/&.'-]*)*\.?\s*$", ""),
            (r"\bPhoto by [A-Z][\w/&.'-]*( [A-Z/][\w/&.'-]*)*\.?\s*$", ""),
            (r"Image copyright( [A-Z][\w/&.'-]*)*( Image caption)?", ""),
            (r"\((left|right|center|centre)\)", " "),
            (r" +", " "),
        ];
        rules
            .iter()
            .filter_map(|(p, r)| Regex::new(p).ok().map(|re| (re, *r)))
            .collect()
    })
}

/// Strips credit tags and position markers from a caption line.
pub fn clean_caption(line: &str) -> String {
    let mut text = line.to_string();
    for (re, replacement) in cleaning_rules() {
        text = re.replace_all(&text, *replacement).into_owned();
    }
    text.trim().to_string()
}

/// The cleaned caption lines of an article (empty ones dropped).
pub fn caption_lines(article: &str) -> Vec<String> {
    article
        .lines()
        .filter(|l| is_caption_line(l))
        .map(clean_caption)
        .filter(|c| !c.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caption_lines_are_recognised() {
        assert!(is_caption_line(
            "John Smith (left) shakes hands with Maria Lopez."
        ));
        assert!(is_caption_line("Ann Lee, pictured, speaks"));
        assert!(is_caption_line("A crowd gathers. Photo: Reuters"));
        assert!(is_caption_line("Fans cheer (AP Photo/Jane Doe)"));
        assert!(is_caption_line(
            "Image copyright Getty Images Image caption Ann Lee waves"
        ));
        assert!(!is_caption_line("The summit ended on Monday."));
        let long = format!("{} (left)", "x".repeat(1000));
        assert!(!is_caption_line(&long));
        let article = "Leaders met in Geneva.\nJohn Smith (left) greets Maria Lopez. Photo: Reuters\nMore text.";
        assert_eq!(
            caption_lines(article),
            vec!["John Smith greets Maria Lopez."]
        );
    }

    #[test]
    fn credit_tags_are_cleaned() {
        assert_eq!(
            clean_caption("Ann Lee (left) hugs Tom Berg. (AP Photo/Evan Vucci)"),
            "Ann Lee hugs Tom Berg."
        );
        assert_eq!(
            clean_caption("Ann Lee, left, hugs Tom Berg, right, in Rome. Photo: Reuters"),
            "Ann Lee hugs Tom Berg in Rome."
        );
        assert_eq!(
            clean_caption("Image copyright Getty Images Image caption Ann Lee waves"),
            "Ann Lee waves"
        );
        assert_eq!(clean_caption("Image copyright Getty Images"), "");
        assert_eq!(
            clean_caption("FILE PHOTO: Ann Lee waves. Photo: AFP"),
            "Ann Lee waves."
        );
        assert_eq!(
            clean_caption("Ann Lee waves. Photo by Jane Doe/AFP"),
            "Ann Lee waves."
        );
        assert_eq!(
            clean_caption("Ann Lee waves (Getty Images)"),
            "Ann Lee waves"
        );
        assert_eq!(
            clean_caption("Ann Lee waves Image 3 of 12"),
            "Ann Lee waves"
        );
    }
}
