//! `text`: everyday text tools for a model that should not count, slugify or regex by hand.
//!
//! Every tool is a plain function, so the tests below call them directly on the build machine
//! (`cargo test -p text`), and through `CAPSULE_PLUGIN.call` to cover the JSON path the host uses.

use capsule_sdk::prelude::*;
use heck::{ToKebabCase, ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
use regex::Regex;

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TextArgs {
    /// The text to analyse.
    text: String,
}

/// Counts of a text.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
struct TextCounts {
    /// Whitespace-separated words.
    words: usize,
    /// Lines; a last line without a trailing newline counts, an empty text has 0.
    lines: usize,
    /// Unicode characters (scalar values), not bytes.
    characters: usize,
    /// Bytes of the UTF-8 encoding.
    bytes: usize,
}

/// Count the words, lines, characters and UTF-8 bytes of a text. Use it instead of counting by
/// eye, e.g. to check a length limit.
#[tool(title = "Count words", read_only, idempotent)]
fn word_count(args: TextArgs) -> TextCounts {
    let text = args.text;
    TextCounts {
        words: text.split_whitespace().count(),
        lines: text.lines().count(),
        characters: text.chars().count(),
        bytes: text.len(),
    }
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct SlugifyArgs {
    /// Text to turn into a slug, e.g. a title.
    text: String,
    /// Separator between words (default "-").
    #[serde(default)]
    separator: Option<String>,
    /// Maximum length of the slug in characters; words are dropped from the end to fit.
    #[serde(default)]
    max_length: Option<usize>,
}

/// Turn text into a lowercase, URL-safe slug ("Héllo, World!" -> "hello-world"). Accented
/// Latin letters lose their accents, other letters and digits are kept, everything else
/// separates words.
#[tool(title = "Slugify", read_only, idempotent)]
fn slugify(args: SlugifyArgs) -> Result<String, ToolError> {
    let separator = args.separator.as_deref().unwrap_or("-");
    if separator.chars().any(char::is_alphanumeric) {
        return Err(ToolError::invalid_arguments(
            "the separator must not contain letters or digits",
        ));
    }
    let words = slug_words(&args.text);
    let mut slug = String::new();
    for word in words {
        let extra = if slug.is_empty() {
            word.chars().count()
        } else {
            separator.chars().count() + word.chars().count()
        };
        if let Some(max) = args.max_length
            && slug.chars().count() + extra > max
        {
            if slug.is_empty() {
                // A single word longer than the limit is cut rather than dropped.
                slug = word.chars().take(max).collect();
            }
            break;
        }
        if !slug.is_empty() {
            slug.push_str(separator);
        }
        slug.push_str(&word);
    }
    Ok(slug)
}

/// The lowercase, accent-folded words of `text`.
fn slug_words(text: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        if c == '\'' || c == '’' {
            // "don't" -> "dont", not "don-t".
            continue;
        }
        if let Some(folded) = fold_latin(c) {
            word.push_str(folded);
        } else if c.is_alphanumeric() {
            word.extend(c.to_lowercase());
        } else if !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// ASCII for the accented Latin letters of Latin-1 and Latin Extended-A, lowercased.
fn fold_latin(c: char) -> Option<&'static str> {
    Some(match c {
        'A'..='Z' | 'a'..='z' => return None,
        'À'..='Å' | 'à'..='å' | 'Ā'..='ą' => "a",
        'Æ' | 'æ' => "ae",
        'Ç' | 'ç' | 'Ć'..='č' => "c",
        'Ď'..='đ' | 'Ð' | 'ð' => "d",
        'È'..='Ë' | 'è'..='ë' | 'Ē'..='ě' => "e",
        'Ĝ'..='ģ' => "g",
        'Ĥ'..='ħ' => "h",
        'Ì'..='Ï' | 'ì'..='ï' | 'Ĩ'..='ı' => "i",
        'Ĳ' | 'ĳ' => "ij",
        'Ĵ' | 'ĵ' => "j",
        'Ķ'..='ĸ' => "k",
        'Ĺ'..='ł' => "l",
        'Ñ' | 'ñ' | 'Ń'..='ŋ' => "n",
        'Ò'..='Ö' | 'Ø' | 'ò'..='ö' | 'ø' | 'Ō'..='ő' => "o",
        'Œ' | 'œ' => "oe",
        'Ŕ'..='ř' => "r",
        'Ś'..='š' => "s",
        'ß' => "ss",
        'Ţ'..='ŧ' => "t",
        'Þ' | 'þ' => "th",
        'Ù'..='Ü' | 'ù'..='ü' | 'Ũ'..='ų' => "u",
        'Ŵ' | 'ŵ' => "w",
        'Ý' | 'ý' | 'ÿ' | 'Ŷ'..='Ÿ' => "y",
        'Ź'..='ž' => "z",
        _ => return None,
    })
}

/// A letter case or identifier style.
#[derive(Clone, Copy, Debug, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
enum Case {
    /// all lowercase
    Lower,
    /// ALL UPPERCASE
    Upper,
    /// Each Word Capitalised, punctuation kept
    Title,
    /// Only the first letter capitalised, punctuation kept
    Sentence,
    /// snake_case
    Snake,
    /// kebab-case
    Kebab,
    /// camelCase
    Camel,
    /// PascalCase
    Pascal,
    /// CONSTANT_CASE
    Constant,
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ChangeCaseArgs {
    /// The text to convert.
    text: String,
    /// The target case. lower, upper, title and sentence keep punctuation; snake, kebab, camel,
    /// pascal and constant make identifiers, splitting words at spaces, punctuation and
    /// case changes ("parseHTTPResponse" -> "parse_http_response").
    case: Case,
}

/// Convert text to another letter case or identifier style: lower, upper, title, sentence,
/// snake_case, kebab-case, camelCase, PascalCase or CONSTANT_CASE.
#[tool(title = "Change case", read_only, idempotent)]
fn change_case(args: ChangeCaseArgs) -> String {
    let text = args.text.as_str();
    match args.case {
        Case::Lower => text.to_lowercase(),
        Case::Upper => text.to_uppercase(),
        Case::Title => title_case(text),
        Case::Sentence => sentence_case(text),
        Case::Snake => text.to_snake_case(),
        Case::Kebab => text.to_kebab_case(),
        Case::Camel => text.to_lower_camel_case(),
        Case::Pascal => text.to_upper_camel_case(),
        Case::Constant => text.to_shouty_snake_case(),
    }
}

/// Capitalises the first letter of every word and lowercases the rest, keeping all other
/// characters, so "the QUICK brown-fox" becomes "The Quick Brown-fox".
fn title_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at_word_start = true;
    for c in text.chars() {
        if c.is_whitespace() {
            at_word_start = true;
            out.push(c);
        } else if at_word_start && c.is_alphanumeric() {
            out.extend(c.to_uppercase());
            at_word_start = false;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Lowercases everything but the first letter of the text.
fn sentence_case(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut seen_letter = false;
    for c in text.chars() {
        if !seen_letter && c.is_alphabetic() {
            out.extend(c.to_uppercase());
            seen_letter = true;
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// A capture group by number (0 is the whole match) or by name.
#[derive(Clone, Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
enum Group {
    Number(usize),
    Name(String),
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct RegexExtractArgs {
    /// Regular expression, Rust `regex` syntax (like PCRE without look-around or
    /// backreferences). Inline flags work: `(?i)` ignores case, `(?m)` makes ^ and $ match at
    /// line ends.
    pattern: String,
    /// The text to search.
    text: String,
    /// Capture group to return instead of the whole match: a number (1 = first group) or a
    /// group name. Matches where the group did not take part are skipped.
    #[serde(default)]
    group: Option<Group>,
    /// Return at most this many matches (default 100).
    #[serde(default)]
    limit: Option<usize>,
}

/// Matches found by `regex_extract`.
#[derive(Debug, PartialEq, Serialize, JsonSchema)]
struct Matches {
    /// The matched text (or group) of each match, in order.
    matches: Vec<String>,
    /// How many matches there are in all, including any beyond the limit.
    total: usize,
    /// True when `total` is larger than the number returned.
    truncated: bool,
}

const DEFAULT_MATCH_LIMIT: usize = 100;

/// Find every match of a regular expression in a text and return the matched strings (or one
/// capture group of each). Use it to pull out emails, numbers, IDs or dates reliably.
#[tool(title = "Extract regex matches", read_only, idempotent)]
fn regex_extract(args: RegexExtractArgs) -> Result<Matches, ToolError> {
    let regex = Regex::new(&args.pattern).map_err(|error| {
        ToolError::invalid_arguments(format!("the pattern does not compile: {error}"))
    })?;
    let group = match &args.group {
        None => 0,
        Some(Group::Number(number)) if *number < regex.captures_len() => *number,
        Some(Group::Number(number)) => {
            return Err(ToolError::invalid_arguments(format!(
                "the pattern has no group {number}: it has {} capture group(s)",
                regex.captures_len() - 1
            )));
        }
        Some(Group::Name(name)) => match regex.capture_names().position(|n| n == Some(name)) {
            Some(index) => index,
            None => match name.parse::<usize>() {
                Ok(number) if number < regex.captures_len() => number,
                _ => {
                    return Err(ToolError::invalid_arguments(format!(
                        "the pattern has no group named `{name}`"
                    )));
                }
            },
        },
    };
    let limit = args.limit.unwrap_or(DEFAULT_MATCH_LIMIT);
    let mut matches = Vec::new();
    let mut total = 0;
    for captures in regex.captures_iter(&args.text) {
        if let Some(found) = captures.get(group) {
            total += 1;
            if matches.len() < limit {
                matches.push(found.as_str().to_owned());
            }
        }
    }
    Ok(Matches {
        truncated: total > matches.len(),
        matches,
        total,
    })
}

#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct TruncateArgs {
    /// The text to shorten.
    text: String,
    /// Maximum length of the result in characters, ellipsis included.
    max_length: usize,
    /// Appended when the text was cut (default "…").
    #[serde(default)]
    ellipsis: Option<String>,
    /// Cut at the last word boundary that fits instead of mid-word (default true).
    #[serde(default)]
    whole_words: Option<bool>,
}

/// Shorten text to at most `max_length` characters, ending in an ellipsis when it was cut.
/// Text that already fits is returned unchanged.
#[tool(title = "Truncate", read_only, idempotent)]
fn truncate(args: TruncateArgs) -> Result<String, ToolError> {
    let ellipsis = args.ellipsis.as_deref().unwrap_or("…");
    let whole_words = args.whole_words.unwrap_or(true);
    let text = args.text;
    if text.chars().count() <= args.max_length {
        return Ok(text);
    }
    let ellipsis_length = ellipsis.chars().count();
    let Some(room) = args.max_length.checked_sub(ellipsis_length) else {
        return Err(ToolError::invalid_arguments(format!(
            "max_length {} leaves no room for the ellipsis {ellipsis:?} ({ellipsis_length} characters)",
            args.max_length
        )));
    };
    let cut_at = text.char_indices().nth(room).map_or(text.len(), |(i, _)| i);
    let mut kept = &text[..cut_at];
    let cut_inside_word = text[cut_at..]
        .chars()
        .next()
        .is_some_and(|c| !c.is_whitespace());
    if whole_words
        && cut_inside_word
        && let Some(space) = kept.rfind(char::is_whitespace)
    {
        kept = &kept[..space];
    }
    Ok(format!("{}{ellipsis}", kept.trim_end()))
}

export_plugin!(word_count, slugify, change_case, regex_extract, truncate);

#[cfg(test)]
mod tests {
    use super::*;
    use capsule_sdk::CallError;
    use capsule_sdk::serde_json::{Value, json};

    fn call(name: &str, arguments: Value) -> Result<capsule_sdk::ToolOutput, CallError> {
        CAPSULE_PLUGIN.call(name, &arguments.to_string())
    }

    fn text(name: &str, arguments: Value) -> String {
        call(name, arguments).unwrap().text_content()
    }

    #[test]
    fn lists_every_tool_with_object_schemas() {
        let tools = CAPSULE_PLUGIN.definitions();
        let names: Vec<_> = tools.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "word_count",
                "slugify",
                "change_case",
                "regex_extract",
                "truncate"
            ]
        );
        for tool in &tools {
            assert_eq!(tool.input_schema["type"], "object", "{}", tool.name);
            assert!(!tool.description.is_empty());
            assert_eq!(tool.annotations.as_ref().unwrap().read_only, Some(true));
        }
        let word_count = &tools[0];
        let output = word_count.output_schema.as_ref().unwrap();
        assert_eq!(
            output["required"],
            json!(["words", "lines", "characters", "bytes"])
        );
        assert!(tools[1].output_schema.is_none());
    }

    #[test]
    fn word_count_counts() {
        let counts = word_count(TextArgs {
            text: "Héllo  wörld\nsecond line\n".into(),
        });
        assert_eq!(
            counts,
            TextCounts {
                words: 4,
                lines: 2,
                characters: 25,
                bytes: 27
            }
        );
        let empty = word_count(TextArgs {
            text: String::new(),
        });
        assert_eq!((empty.words, empty.lines, empty.characters), (0, 0, 0));
    }

    #[test]
    fn word_count_returns_structured_and_text_json() {
        let output = call("word_count", json!({"text": "one two"})).unwrap();
        let structured = output.structured.unwrap();
        assert_eq!(
            structured,
            json!({"words": 2, "lines": 1, "characters": 7, "bytes": 7})
        );
        assert_eq!(output.content[0].as_text().unwrap(), structured.to_string());
    }

    #[test]
    fn slugify_folds_accents_and_punctuation() {
        assert_eq!(
            text("slugify", json!({"text": "Héllo, World! Don't Panic"})),
            "hello-world-dont-panic"
        );
        assert_eq!(
            text(
                "slugify",
                json!({"text": "Straße über Ærø", "separator": "_"})
            ),
            "strasse_uber_aero"
        );
        assert_eq!(
            text("slugify", json!({"text": "  --Rust 2024 édition--  "})),
            "rust-2024-edition"
        );
        assert_eq!(
            text("slugify", json!({"text": "東京 タワー"})),
            "東京-タワー"
        );
        assert_eq!(text("slugify", json!({"text": "!!!"})), "");
    }

    #[test]
    fn slugify_respects_max_length() {
        assert_eq!(
            text(
                "slugify",
                json!({"text": "the quick brown fox", "max_length": 15})
            ),
            "the-quick-brown"
        );
        assert_eq!(
            text(
                "slugify",
                json!({"text": "the quick brown fox", "max_length": 14})
            ),
            "the-quick"
        );
        assert_eq!(
            text(
                "slugify",
                json!({"text": "incomprehensibilities", "max_length": 6})
            ),
            "incomp"
        );
    }

    #[test]
    fn slugify_rejects_alphanumeric_separators() {
        assert_eq!(
            call("slugify", json!({"text": "a b", "separator": "x"})),
            Err(CallError::InvalidArguments(
                "the separator must not contain letters or digits".into()
            ))
        );
    }

    #[test]
    fn change_case_covers_every_case() {
        let cases = [
            ("lower", "hello world, parsehttpresponse"),
            ("upper", "HELLO WORLD, PARSEHTTPRESPONSE"),
            ("title", "Hello World, Parsehttpresponse"),
            ("sentence", "Hello world, parsehttpresponse"),
            ("snake", "hello_world_parse_http_response"),
            ("kebab", "hello-world-parse-http-response"),
            ("camel", "helloWorldParseHttpResponse"),
            ("pascal", "HelloWorldParseHttpResponse"),
            ("constant", "HELLO_WORLD_PARSE_HTTP_RESPONSE"),
        ];
        for (case, expected) in cases {
            assert_eq!(
                text(
                    "change_case",
                    json!({"text": "hello World, parseHTTPResponse", "case": case})
                ),
                expected,
                "{case}"
            );
        }
    }

    #[test]
    fn change_case_rejects_unknown_cases() {
        let Err(CallError::InvalidArguments(message)) =
            call("change_case", json!({"text": "a", "case": "shouty"}))
        else {
            panic!("expected invalid arguments");
        };
        assert!(
            message.starts_with("`case`: unknown variant `shouty`"),
            "{message}"
        );
    }

    #[test]
    fn regex_extract_returns_matches_and_groups() {
        let text = "alice@example.com, bob@test.org and carol@example.com";
        let all = regex_extract(RegexExtractArgs {
            pattern: r"(?<user>\w+)@(\w+\.\w+)".into(),
            text: text.into(),
            group: None,
            limit: None,
        })
        .unwrap();
        assert_eq!(all.matches.len(), 3);
        assert_eq!(all.matches[1], "bob@test.org");

        let output = call(
            "regex_extract",
            json!({"pattern": r"(?<user>\w+)@(\w+\.\w+)", "text": text, "group": "user", "limit": 2}),
        )
        .unwrap();
        assert_eq!(
            output.structured.unwrap(),
            json!({"matches": ["alice", "bob"], "total": 3, "truncated": true})
        );

        let domains = call(
            "regex_extract",
            json!({"pattern": r"(\w+)@(\w+\.\w+)", "text": text, "group": 2}),
        )
        .unwrap();
        assert_eq!(
            domains.structured.unwrap()["matches"],
            json!(["example.com", "test.org", "example.com"])
        );
    }

    #[test]
    fn regex_extract_skips_matches_without_the_group() {
        let found = regex_extract(RegexExtractArgs {
            pattern: r"a(b)?".into(),
            text: "ab a ab".into(),
            group: Some(Group::Number(1)),
            limit: None,
        })
        .unwrap();
        assert_eq!(found.matches, ["b", "b"]);
        assert_eq!(found.total, 2);
    }

    #[test]
    fn regex_extract_explains_bad_patterns_and_groups() {
        let Err(CallError::InvalidArguments(message)) = call(
            "regex_extract",
            json!({"pattern": "(unclosed", "text": "x"}),
        ) else {
            panic!("expected invalid arguments");
        };
        assert!(
            message.starts_with("the pattern does not compile: regex parse error"),
            "{message}"
        );
        assert_eq!(
            call(
                "regex_extract",
                json!({"pattern": "(a)", "text": "a", "group": 2})
            ),
            Err(CallError::InvalidArguments(
                "the pattern has no group 2: it has 1 capture group(s)".into()
            ))
        );
        assert_eq!(
            call(
                "regex_extract",
                json!({"pattern": "(a)", "text": "a", "group": "nope"})
            ),
            Err(CallError::InvalidArguments(
                "the pattern has no group named `nope`".into()
            ))
        );
    }

    #[test]
    fn truncate_cuts_at_words_and_adds_an_ellipsis() {
        let sentence = "The quick brown fox jumps";
        assert_eq!(
            text("truncate", json!({"text": sentence, "max_length": 100})),
            sentence
        );
        assert_eq!(
            text("truncate", json!({"text": sentence, "max_length": 12})),
            "The quick…"
        );
        assert_eq!(
            text(
                "truncate",
                json!({"text": sentence, "max_length": 12, "whole_words": false})
            ),
            "The quick b…"
        );
        assert_eq!(
            text(
                "truncate",
                json!({"text": sentence, "max_length": 13, "ellipsis": "..."})
            ),
            "The quick..."
        );
        assert_eq!(
            text("truncate", json!({"text": "héllo wörld", "max_length": 6})),
            "héllo…"
        );
    }

    #[test]
    fn truncate_needs_room_for_the_ellipsis() {
        assert!(matches!(
            call(
                "truncate",
                json!({"text": "long text", "max_length": 2, "ellipsis": "..."})
            ),
            Err(CallError::InvalidArguments(_))
        ));
    }

    #[test]
    fn unknown_tools_are_named() {
        assert_eq!(
            call("reverse", json!({})),
            Err(CallError::UnknownTool("reverse".into()))
        );
    }
}
