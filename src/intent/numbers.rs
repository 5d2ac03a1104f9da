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
    let signed = |whole: f64| if negative { -whole } else { whole };
    let mut reading = Reading::new();
    for (i, &word) in tokens.iter().enumerate() {
        let more = i + 1 < tokens.len();
        if word == "point" {
            if matches!(reading.last, Last::Start | Last::Article | Last::And) || !more {
                return None;
            }
            return Some(signed(reading.value() + fraction(&tokens[i + 1..])?));
        }
        reading.word(word, more)?;
    }
    if matches!(reading.last, Last::Article | Last::And) {
        return None;
    }
    Some(signed(reading.value()))
}

/// The digits after "point" ("five", "2") as a fraction: `["two", "five"]` -> 0.25.
fn fraction(tokens: &[&str]) -> Option<f64> {
    let mut frac = String::new();
    for digit in tokens {
        match small_word(digit) {
            Some(d) if d < 10 => frac.push(char::from(b'0' + d as u8)),
            _ if digit.bytes().all(|b| b.is_ascii_digit()) => frac.push_str(digit),
            _ => return None,
        }
    }
    format!("0.{frac}").parse::<f64>().ok()
}

/// A spoken number read word by word: the finished scale groups ("two thousand"), the group
/// being built ("three hundred and five"), and what the last word was, which decides what may
/// follow it.
struct Reading {
    total: f64,
    group: f64,
    last: Last,
    last_scale: f64,
    has_hundred: bool,
}

impl Reading {
    fn new() -> Reading {
        Reading {
            total: 0.0,
            group: 0.0,
            last: Last::Start,
            last_scale: f64::INFINITY,
            has_hundred: false,
        }
    }

    /// The number read so far.
    fn value(&self) -> f64 {
        self.total + self.group
    }

    /// Takes the next word (`more`: other words follow it); `None` when it cannot come here.
    fn word(&mut self, word: &str, more: bool) -> Option<()> {
        if let Some(value) = small_word(word) {
            self.small(value, more)
        } else if let Some(value) = tens_word(word) {
            self.allow(matches!(
                self.last,
                Last::Start | Last::Hundred | Last::Scale | Last::And
            ))?;
            self.group += f64::from(value);
            self.last = Last::Tens;
            Some(())
        } else if word == "hundred" {
            self.hundred()
        } else if let Some(scale) = scale_word(word) {
            self.scale(scale)
        } else if word == "dozen" {
            self.dozen()
        } else if word == "a" || word == "an" {
            self.allow(self.last == Last::Start && more)?;
            self.last = Last::Article;
            Some(())
        } else if word == "and" {
            self.allow(matches!(self.last, Last::Hundred | Last::Scale) && more)?;
            self.last = Last::And;
            Some(())
        } else {
            let value = parse_digits(word)?;
            self.allow(self.last == Last::Start)?;
            self.group = value;
            self.last = Last::Digits;
            Some(())
        }
    }

    /// `Some` when `ok`: the word may come here.
    fn allow(&self, ok: bool) -> Option<()> {
        ok.then_some(())
    }

    /// "zero" to "nineteen".
    fn small(&mut self, value: u32, more: bool) -> Option<()> {
        let fits = match self.last {
            Last::Start | Last::Hundred | Last::Scale | Last::And => true,
            Last::Tens => (1..10).contains(&value),
            _ => false,
        };
        // "zero" only stands alone (or after "point", handled by the caller).
        self.allow(fits && !(value == 0 && (self.last != Last::Start || more)))?;
        self.group += f64::from(value);
        self.last = if value < 10 { Last::Unit } else { Last::Teen };
        Some(())
    }

    /// "hundred", once per group, after an article or a number below 100.
    fn hundred(&mut self) -> Option<()> {
        let ok = match self.last {
            Last::Article => true,
            Last::Unit | Last::Teen | Last::Tens | Last::Digits => {
                !self.has_hundred && self.group < 100.0
            }
            _ => false,
        };
        self.allow(ok)?;
        self.group = if self.last == Last::Article {
            100.0
        } else {
            self.group * 100.0
        };
        self.has_hundred = true;
        self.last = Last::Hundred;
        Some(())
    }

    /// "thousand", "million", ...: each smaller than the one before.
    fn scale(&mut self, scale: f64) -> Option<()> {
        let ok = matches!(
            self.last,
            Last::Article | Last::Unit | Last::Teen | Last::Tens | Last::Hundred | Last::Digits
        );
        self.allow(ok && scale < self.last_scale)?;
        let multiplier = if self.last == Last::Article {
            1.0
        } else {
            self.group
        };
        self.total += multiplier * scale;
        self.group = 0.0;
        self.has_hundred = false;
        self.last_scale = scale;
        self.last = Last::Scale;
        Some(())
    }

    /// "dozen", after an article or a small number, never after a scale.
    fn dozen(&mut self) -> Option<()> {
        let ok = matches!(
            self.last,
            Last::Article | Last::Unit | Last::Teen | Last::Digits
        );
        self.allow(ok && self.total == 0.0)?;
        self.group = if self.last == Last::Article {
            12.0
        } else {
            self.group * 12.0
        };
        self.last = Last::Dozen;
        Some(())
    }
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
