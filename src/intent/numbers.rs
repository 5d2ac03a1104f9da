//! Numbers as people say them and as whisper writes them.
//!
//! Whisper writes "25" one time and "twenty five" the next, so the normaliser turns every spoken
//! number into digits before templates and transcripts are compared. [`parse_number`] reads one
//! number ("25", "2.5", "twenty five", "one hundred and five", "a dozen", "two point five",
//! "minus three"); [`fold_numbers`] finds the longest number phrases in a token list and replaces
//! each with one digit token.

/// Value of a word that names a digit or a teen (0 to 19).
fn small_word(word: &str) -> Option<u32> {
    Some(match word {
        "zero" => 0,
        "one" => 1,
        "two" => 2,
        "three" => 3,
        "four" => 4,
        "five" => 5,
        "six" => 6,
        "seven" => 7,
        "eight" => 8,
        "nine" => 9,
        "ten" => 10,
        "eleven" => 11,
        "twelve" => 12,
        "thirteen" => 13,
        "fourteen" => 14,
        "fifteen" => 15,
        "sixteen" => 16,
        "seventeen" => 17,
        "eighteen" => 18,
        "nineteen" => 19,
        _ => return None,
    })
}

/// Value of a word that names a multiple of ten from 20 to 90.
fn tens_word(word: &str) -> Option<u32> {
    Some(match word {
        "twenty" => 20,
        "thirty" => 30,
        "forty" | "fourty" => 40,
        "fifty" => 50,
        "sixty" => 60,
        "seventy" => 70,
        "eighty" => 80,
        "ninety" => 90,
        _ => return None,
    })
}

/// Value of a scale word that closes a group ("thousand", "million", "billion").
fn scale_word(word: &str) -> Option<f64> {
    Some(match word {
        "thousand" => 1e3,
        "million" => 1e6,
        "billion" => 1e9,
        _ => return None,
    })
}

/// Parses a number written in digits ("25", "2.5", "-3", "1,000").
fn parse_digits(word: &str) -> Option<f64> {
    let cleaned: String = word.chars().filter(|c| *c != ',').collect();
    let body = cleaned.strip_prefix('-').unwrap_or(&cleaned);
    let mut parts = body.split('.');
    let int = parts.next()?;
    let frac = parts.next();
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits_only(int) || parts.next().is_some() || frac.is_some_and(|f| !digits_only(f)) {
        return None;
    }
    cleaned.parse::<f64>().ok()
}

/// What the previous word of a spoken number was, to reject sequences like "five six".
#[derive(Clone, Copy, PartialEq, Eq)]
enum Last {
    Start,
    Article,
    Unit,
    Teen,
    Tens,
    Hundred,
    Scale,
    And,
    Dozen,
    Digits,
}

/// Reads one number from words or digits, e.g. `"twenty five"` -> 25, `"2.5"` -> 2.5,
/// `"one hundred and five"` -> 105, `"a dozen"` -> 12, `"two point five"` -> 2.5.
///
/// Returns `None` when the text is not exactly one number ("five six", "and", "twenty thirty").
/// Hyphens between words count as spaces ("twenty-five").
pub fn parse_number(words: &str) -> Option<f64> {
    let lowered = words.to_lowercase();
    let tokens: Vec<&str> = lowered
        .split(|c: char| c.is_whitespace() || (c == '-' && !lowered.trim_start().starts_with('-')))
        .filter(|t| !t.is_empty())
        .collect();
    parse_number_tokens(&tokens)
}

/// [`parse_number`] over words that are already split and lowercased.
pub(crate) fn parse_number_tokens(tokens: &[&str]) -> Option<f64> {
    let (negative, tokens) = match tokens.split_first() {
        Some((&"minus" | &"negative", rest)) => (true, rest),
        _ => (false, tokens),
    };
    if tokens.is_empty() {
        return None;
    }
    let mut total = 0.0_f64;
    let mut group = 0.0_f64;
    let mut last = Last::Start;
    let mut last_scale = f64::INFINITY;
    let mut has_hundred = false;
    let mut index = 0;
    while index < tokens.len() {
        let word = tokens[index];
        index += 1;
        if word == "point" {
            if matches!(last, Last::Start | Last::Article | Last::And) || index >= tokens.len() {
                return None;
            }
            let mut frac = String::new();
            for digit in &tokens[index..] {
                match small_word(digit) {
                    Some(d) if d < 10 => frac.push(char::from(b'0' + d as u8)),
                    _ if digit.bytes().all(|b| b.is_ascii_digit()) => frac.push_str(digit),
                    _ => return None,
                }
            }
            let value = format!("0.{frac}").parse::<f64>().ok()?;
            let whole = total + group + value;
            return Some(if negative { -whole } else { whole });
        }
        if let Some(value) = small_word(word) {
            let fits = match last {
                Last::Start | Last::Hundred | Last::Scale | Last::And => true,
                Last::Tens => (1..10).contains(&value),
                _ => false,
            };
            // "zero" only stands alone (or after "point", handled above).
            if !fits || (value == 0 && (last != Last::Start || index < tokens.len())) {
                return None;
            }
            group += f64::from(value);
            last = if value < 10 { Last::Unit } else { Last::Teen };
        } else if let Some(value) = tens_word(word) {
            if !matches!(last, Last::Start | Last::Hundred | Last::Scale | Last::And) {
                return None;
            }
            group += f64::from(value);
            last = Last::Tens;
        } else if word == "hundred" {
            let ok = match last {
                Last::Article => true,
                Last::Unit | Last::Teen | Last::Tens | Last::Digits => {
                    !has_hundred && group < 100.0
                }
                _ => false,
            };
            if !ok {
                return None;
            }
            group = if last == Last::Article {
                100.0
            } else {
                group * 100.0
            };
            has_hundred = true;
            last = Last::Hundred;
        } else if let Some(scale) = scale_word(word) {
            let ok = matches!(
                last,
                Last::Article | Last::Unit | Last::Teen | Last::Tens | Last::Hundred | Last::Digits
            );
            if !ok || scale >= last_scale {
                return None;
            }
            let multiplier = if last == Last::Article { 1.0 } else { group };
            total += multiplier * scale;
            group = 0.0;
            has_hundred = false;
            last_scale = scale;
            last = Last::Scale;
        } else if word == "dozen" {
            let ok = matches!(last, Last::Article | Last::Unit | Last::Teen | Last::Digits);
            if !ok || total != 0.0 {
                return None;
            }
            group = if last == Last::Article {
                12.0
            } else {
                group * 12.0
            };
            last = Last::Dozen;
        } else if word == "a" || word == "an" {
            if last != Last::Start || index >= tokens.len() {
                return None;
            }
            last = Last::Article;
        } else if word == "and" {
            if !matches!(last, Last::Hundred | Last::Scale) || index >= tokens.len() {
                return None;
            }
            last = Last::And;
        } else if let Some(value) = parse_digits(word) {
            if last != Last::Start {
                return None;
            }
            group = value;
            last = Last::Digits;
        } else {
            return None;
        }
    }
    if matches!(last, Last::Article | Last::And) {
        return None;
    }
    let whole = total + group;
    Some(if negative { -whole } else { whole })
}

/// True when `word` can appear inside a spoken number.
fn is_number_part(word: &str) -> bool {
    small_word(word).is_some()
        || tens_word(word).is_some()
        || scale_word(word).is_some()
        || matches!(
            word,
            "hundred" | "dozen" | "point" | "and" | "a" | "an" | "minus"
        )
        || parse_digits(word).is_some()
}

/// True when `word` can start a number phrase on its own (not "and", "point", "a"...).
fn starts_number(word: &str) -> bool {
    small_word(word).is_some()
        || tens_word(word).is_some()
        || parse_digits(word).is_some()
        || matches!(word, "a" | "an" | "minus")
}

/// Writes a number the way the normaliser stores it: "25", "2.5", "-3".
pub(crate) fn format_number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        format!("{value}")
    }
}

/// A number phrase found by [`fold_numbers`]: the tokens `start..end` read as `value`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct NumberSpan {
    /// Index of the first token of the phrase.
    pub start: usize,
    /// One past the last token of the phrase.
    pub end: usize,
    /// The number the phrase says.
    pub value: f64,
}

/// Finds, left to right, the longest number phrases in `words` ("twenty five", "a dozen", "25").
///
/// A lone "a"/"an"/"minus"/"and" is never a number, so "a timer" stays words.
pub(crate) fn find_numbers(words: &[&str]) -> Vec<NumberSpan> {
    let mut spans = Vec::new();
    let mut start = 0;
    while start < words.len() {
        if !starts_number(words[start]) {
            start += 1;
            continue;
        }
        let mut limit = start;
        while limit < words.len() && is_number_part(words[limit]) {
            limit += 1;
        }
        let best = (start + 1..=limit)
            .rev()
            .find_map(|end| parse_number_tokens(&words[start..end]).map(|value| (end, value)));
        match best {
            Some((end, value)) => {
                spans.push(NumberSpan { start, end, value });
                start = end;
            }
            None => start += 1,
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_parse() {
        assert_eq!(parse_number("25"), Some(25.0));
        assert_eq!(parse_number("2.5"), Some(2.5));
        assert_eq!(parse_number("1,000"), Some(1000.0));
        assert_eq!(parse_number("-3"), Some(-3.0));
        assert_eq!(parse_number("2.5.1"), None);
        assert_eq!(parse_number(""), None);
    }

    #[test]
    fn words_parse() {
        assert_eq!(parse_number("ten"), Some(10.0));
        assert_eq!(parse_number("twenty five"), Some(25.0));
        assert_eq!(parse_number("Twenty-Five"), Some(25.0));
        assert_eq!(parse_number("one hundred and five"), Some(105.0));
        assert_eq!(parse_number("a hundred"), Some(100.0));
        assert_eq!(parse_number("a dozen"), Some(12.0));
        assert_eq!(parse_number("two dozen"), Some(24.0));
        assert_eq!(parse_number("two point five"), Some(2.5));
        assert_eq!(parse_number("three point two five"), Some(3.25));
        assert_eq!(parse_number("nineteen hundred"), Some(1900.0));
        assert_eq!(parse_number("two thousand and twenty six"), Some(2026.0));
        assert_eq!(
            parse_number("one million two hundred thousand"),
            Some(1_200_000.0)
        );
        assert_eq!(parse_number("5 hundred"), Some(500.0));
        assert_eq!(parse_number("minus five"), Some(-5.0));
        assert_eq!(parse_number("zero"), Some(0.0));
    }

    #[test]
    fn non_numbers_rejected() {
        for text in [
            "five six",
            "twenty thirty",
            "and",
            "a",
            "one and",
            "thousand million",
            "twenty zero",
            "ten five",
            "hello",
            "point five",
            "minus",
            "hundred hundred",
        ] {
            assert_eq!(parse_number(text), None, "{text}");
        }
    }

    #[test]
    fn finds_longest_phrases() {
        let words = [
            "in", "twenty", "five", "minutes", "and", "a", "dozen", "eggs",
        ];
        let spans = find_numbers(&words);
        assert_eq!(
            spans,
            vec![
                NumberSpan {
                    start: 1,
                    end: 3,
                    value: 25.0
                },
                NumberSpan {
                    start: 5,
                    end: 7,
                    value: 12.0
                },
            ]
        );
        // A lone article is not a number; consecutive digits stay separate numbers.
        assert!(find_numbers(&["set", "a", "timer"]).is_empty());
        let spans = find_numbers(&["one", "two", "three"]);
        assert_eq!(spans.len(), 3);
        // "five thirty" is a time, read as two numbers.
        assert_eq!(find_numbers(&["five", "thirty"]).len(), 2);
    }

    #[test]
    fn formats_whole_numbers_without_fraction() {
        assert_eq!(format_number(25.0), "25");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(-3.0), "-3");
    }
}
