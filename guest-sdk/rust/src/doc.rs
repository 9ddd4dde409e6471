//! Doc comments as prose. Rust doc comments are hard-wrapped at ~100 columns; a model reading a
//! tool description should get paragraphs, not the source file's line breaks. Markdown structure
//! (blank lines, lists, headings, tables, quotes, code) is kept.

/// Joins soft-wrapped lines with spaces, keeping line breaks that mean something in Markdown.
pub fn unwrap_soft_breaks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    let mut previous: Option<&str> = None;
    for line in text.split('\n') {
        let fence = line.trim_start().starts_with("```");
        match previous {
            None => out.push_str(line),
            Some(previous) => {
                let keep_break = in_fence
                    || fence
                    || line.trim().is_empty()
                    || previous.trim().is_empty()
                    || previous.ends_with("  ")
                    || previous.trim_start().starts_with("```")
                    || starts_block(line);
                if keep_break {
                    out.push('\n');
                    out.push_str(line);
                } else {
                    out.push(' ');
                    out.push_str(line.trim_start());
                }
            }
        }
        if fence {
            in_fence = !in_fence;
        }
        previous = Some(line);
    }
    out
}

/// A line that starts its own Markdown block: a list item, heading, table row, quote or an
/// indented code line.
fn starts_block(line: &str) -> bool {
    if line.starts_with("    ") || line.starts_with('\t') {
        return true;
    }
    let trimmed = line.trim_start();
    if ["- ", "* ", "+ ", "#", "|", ">"]
        .iter()
        .any(|marker| trimmed.starts_with(marker))
    {
        return true;
    }
    let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && (trimmed[digits..].starts_with(". ") || trimmed[digits..].starts_with(") "))
}

#[cfg(test)]
mod tests {
    use super::unwrap_soft_breaks;

    #[test]
    fn joins_wrapped_lines() {
        assert_eq!(
            unwrap_soft_breaks("Count the words of a text. Use it instead\nof counting by eye."),
            "Count the words of a text. Use it instead of counting by eye."
        );
    }

    #[test]
    fn keeps_paragraphs_lists_and_code() {
        let doc = "First paragraph\ncontinues.\n\nOptions:\n- one\n- two\n  wraps\n1. first\n\n```\nlet a = 1;\nlet b = 2;\n```\nAfter.";
        assert_eq!(
            unwrap_soft_breaks(doc),
            "First paragraph continues.\n\nOptions:\n- one\n- two wraps\n1. first\n\n```\nlet a = 1;\nlet b = 2;\n```\nAfter."
        );
    }

    #[test]
    fn single_lines_are_unchanged() {
        assert_eq!(unwrap_soft_breaks("Just one line."), "Just one line.");
        assert_eq!(unwrap_soft_breaks(""), "");
    }
}
