//! Preparing text for speech: light normalisation and sentence splitting.
//!
//! Replies are often written for a screen (markdown, links, lists). [`normalise_for_speech`] turns
//! them into something a synthesiser can read aloud, and [`split_sentences`] cuts the result into
//! sentence-sized pieces so a backend can start speaking the first piece while it renders the
//! next. Splitting avoids the usual traps: abbreviations ("e.g.", "Dr."), initials, decimals
//! ("3.5") and times ("7.30") never end a sentence.

/// A sentence longer than this many characters is cut at a comma (or, failing that, a space).
pub const LONG_SENTENCE_CHARS: usize = 200;

/// Abbreviations (lower case, without the final dot) after which a dot does not end a sentence.
const ABBREVIATIONS: &[&str] = &[
    "e.g", "i.e", "eg", "ie", "cf", "vs", "dr", "mr", "mrs", "ms", "prof", "st", "sr", "jr", "mt",
    "approx", "fig", "no", "nr", "ca", "etc", "inc", "ltd", "co",
];

/// Splits `text` into pieces to be spoken one after another.
///
/// A piece ends after `.`, `!`, `?` or `;` followed by a space (closing quotes and brackets stay
/// with the sentence they close), and at every line break. Dots inside numbers ("3.5", "7.30"),
/// after known abbreviations ("e.g.", "Dr.") and after single-letter initials do not split.
/// Pieces longer than [`LONG_SENTENCE_CHARS`] are cut again at a comma. Pieces are trimmed and
/// empty pieces are dropped.
pub fn split_sentences(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        for sentence in split_line(line) {
            split_long(&sentence, &mut out);
        }
    }
    out
}

/// Splits one line at sentence ends.
fn split_line(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut pieces = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '.' | '!' | '?' | ';' | '…') {
            // Take a run of terminators ("?!", "...") and the closing marks after it.
            let mut end = i + 1;
            while end < chars.len() && matches!(chars[end], '.' | '!' | '?' | '…') {
                end += 1;
            }
            while end < chars.len() && matches!(chars[end], '"' | '\'' | ')' | ']' | '”' | '’')
            {
                end += 1;
            }
            let at_break = end >= chars.len() || chars[end].is_whitespace();
            if at_break && !(c == '.' && end == i + 1 && dot_is_not_an_end(&chars[start..i])) {
                push_piece(&chars[start..end], &mut pieces);
                start = end;
            }
            i = end;
        } else {
            i += 1;
        }
    }
    push_piece(&chars[start..], &mut pieces);
    pieces
}

/// True when a single dot after `before` belongs to an abbreviation or an initial.
fn dot_is_not_an_end(before: &[char]) -> bool {
    let word: String = before
        .iter()
        .rev()
        .take_while(|c| !c.is_whitespace() && !matches!(c, '(' | '"' | '\'' | '['))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let lower = word.to_lowercase();
    // A single capital letter is an initial ("J. R. R. Tolkien").
    let mut letters = word.chars();
    if let (Some(first), None) = (letters.next(), letters.next())
        && first.is_uppercase()
    {
        return true;
    }
    ABBREVIATIONS.contains(&lower.as_str())
}

/// Pushes the trimmed text of `chars` unless it is empty.
fn push_piece(chars: &[char], pieces: &mut Vec<String>) {
    let piece: String = chars.iter().collect();
    let piece = piece.trim();
    if !piece.is_empty() {
        pieces.push(piece.to_owned());
    }
}

/// Cuts a sentence longer than [`LONG_SENTENCE_CHARS`] at commas (or spaces) and pushes the parts.
fn split_long(sentence: &str, out: &mut Vec<String>) {
    let mut rest: Vec<char> = sentence.chars().collect();
    while rest.len() > LONG_SENTENCE_CHARS {
        let Some(cut) = long_cut(&rest) else { break };
        push_piece(&rest[..cut], out);
        rest.drain(..cut);
    }
    push_piece(&rest, out);
}

/// Where to cut a long piece: just after the last comma before the limit (but not too early),
/// else just after the first comma past it, else at the last space before the limit when the
/// piece is very long. `None` leaves the piece whole.
fn long_cut(chars: &[char]) -> Option<usize> {
    let min = LONG_SENTENCE_CHARS / 4;
    let is_comma_break =
        |i: usize| chars[i] == ',' && chars.get(i + 1).is_some_and(|c| c.is_whitespace());
    if let Some(i) = (min..LONG_SENTENCE_CHARS)
        .rev()
        .find(|&i| is_comma_break(i))
    {
        return Some(i + 1);
    }
    if let Some(i) =
        (LONG_SENTENCE_CHARS..chars.len().saturating_sub(1)).find(|&i| is_comma_break(i))
    {
        return Some(i + 1);
    }
    if chars.len() > LONG_SENTENCE_CHARS * 3 / 2 {
        return (min..LONG_SENTENCE_CHARS)
            .rev()
            .find(|&i| chars[i].is_whitespace());
    }
    None
}

/// Rewrites screen text so that it reads well aloud.
///
/// Markdown emphasis, headings, quote markers, bullets, backticks and code fences are removed;
/// `[label](url)` becomes `label`; bare URLs (`http://`, `https://`, `www.`) become "link";
/// table bars become commas; runs of spaces collapse. Line breaks are kept, since they separate
/// sentences for [`split_sentences`].
pub fn normalise_for_speech(text: &str) -> String {
    let mut lines = Vec::new();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with("```") || line.starts_with("~~~") {
            continue;
        }
        let line = strip_line_markers(line);
        let line = replace_links(line);
        let line = strip_inline_markers(&line);
        let words: Vec<String> = line.split_whitespace().map(speak_word).collect();
        lines.push(words.join(" "));
    }
    lines.join("\n").trim().to_owned()
}

/// Removes heading, quote and bullet markers at the start of a line.
fn strip_line_markers(mut line: &str) -> &str {
    loop {
        let trimmed = line.trim_start();
        let next = if let Some(rest) = trimmed.strip_prefix('>') {
            rest
        } else if trimmed.starts_with('#') {
            trimmed.trim_start_matches('#')
        } else if let Some(rest) = ["- ", "* ", "+ ", "• "]
            .iter()
            .find_map(|b| trimmed.strip_prefix(b))
        {
            rest
        } else {
            return trimmed;
        };
        line = next;
    }
}

/// Turns `![alt](url)` and `[label](url)` into their text.
fn replace_links(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let parsed = after.find("](").and_then(|close| {
            let target = &after[close + 2..];
            target
                .find(')')
                .map(|end| (&after[..close], &target[end + 1..]))
        });
        match parsed {
            Some((label, tail)) => {
                out.push_str(rest[..open].strip_suffix('!').unwrap_or(&rest[..open]));
                out.push_str(label);
                rest = tail;
            }
            None => {
                out.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes emphasis and code markers inside a line; table bars become commas.
fn strip_inline_markers(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    for (i, &c) in chars.iter().enumerate() {
        match c {
            '*' | '`' | '~' => {}
            // An underscore inside a word ("file_name") reads as a space; at a word edge it is
            // emphasis and disappears.
            '_' => {
                let inside = i > 0
                    && chars[i - 1].is_alphanumeric()
                    && chars.get(i + 1).is_some_and(|n| n.is_alphanumeric());
                if inside {
                    out.push(' ');
                }
            }
            '|' => {
                let kept = out.trim_end().len();
                out.truncate(kept);
                out.push(',');
            }
            _ => out.push(c),
        }
    }
    let trimmed = out.trim().trim_start_matches(',').trim_end_matches(',');
    trimmed.trim().to_owned()
}

/// Replaces a URL by "link", keeping punctuation that follows it.
fn speak_word(word: &str) -> String {
    let lower = word.to_lowercase();
    let bare = lower.trim_start_matches(['(', '<', '"']);
    if bare.starts_with("http://") || bare.starts_with("https://") || bare.starts_with("www.") {
        let trailing: String = word
            .chars()
            .rev()
            .take_while(|c| matches!(c, '.' | ',' | '!' | '?' | ';' | ':'))
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("link{trailing}")
    } else {
        word.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_sentence_ends_and_newlines() {
        let got = split_sentences("Hello there. How are you? Great!\nNext line; another part");
        assert_eq!(
            got,
            [
                "Hello there.",
                "How are you?",
                "Great!",
                "Next line;",
                "another part"
            ]
        );
    }

    #[test]
    fn keeps_abbreviations_numbers_and_times_together() {
        let got = split_sentences(
            "Bring snacks, e.g. apples and pears. Dr. Smith arrives at 7.30 today. It costs 3.5 euros.",
        );
        assert_eq!(
            got,
            [
                "Bring snacks, e.g. apples and pears.",
                "Dr. Smith arrives at 7.30 today.",
                "It costs 3.5 euros."
            ]
        );
    }

    #[test]
    fn keeps_initials_quotes_and_ellipses_whole() {
        let got = split_sentences("J. R. R. Tolkien wrote it. She said \"stop.\" Well... maybe?!");
        assert_eq!(
            got,
            [
                "J. R. R. Tolkien wrote it.",
                "She said \"stop.\"",
                "Well...",
                "maybe?!"
            ]
        );
    }

    #[test]
    fn drops_empty_pieces() {
        assert_eq!(split_sentences("Hi.\n\n  Bye.  "), ["Hi.", "Bye."]);
        assert!(split_sentences("").is_empty());
        assert!(split_sentences("   \n  ").is_empty());
    }

    #[test]
    fn cuts_long_sentences_at_commas() {
        let clause = "this clause goes on for a while without stopping";
        let long = [clause; 12].join(", ") + ".";
        assert!(long.chars().count() > LONG_SENTENCE_CHARS * 2);
        let got = split_sentences(&long);
        assert!(got.len() >= 3, "{got:?}");
        assert!(got.iter().all(|s| s.chars().count() <= LONG_SENTENCE_CHARS));
        assert!(got[..got.len() - 1].iter().all(|s| s.ends_with(',')));
        assert_eq!(got.join(" "), long);
    }

    #[test]
    fn cuts_very_long_comma_free_sentences_at_spaces() {
        let long = ["word"; 120].join(" ");
        let got = split_sentences(&long);
        assert!(got.len() >= 2);
        // Without commas a piece may run to half as long again before it is cut.
        assert!(
            got.iter()
                .all(|s| s.chars().count() <= LONG_SENTENCE_CHARS * 3 / 2)
        );
        assert_eq!(got.join(" "), long);
    }

    #[test]
    fn normalises_markdown_and_urls() {
        let text = "# Weather\n\n**Today** is _sunny_ with `no` rain.\n- See [the forecast](https://example.com/x) or https://example.org/y.\n> quoted ![map](a.png)\n```\nlet x = 1;\n```\nfile_name | value";
        let got = normalise_for_speech(text);
        assert_eq!(
            got,
            "Weather\n\nToday is sunny with no rain.\nSee the forecast or link.\nquoted map\nlet x = 1;\nfile name, value"
        );
    }

    #[test]
    fn normalised_text_splits_into_clean_sentences() {
        let got = split_sentences(&normalise_for_speech(
            "## Done\n* Sent the email.\n* Booked the room at 9.15 for Dr. Who.",
        ));
        assert_eq!(
            got,
            [
                "Done",
                "Sent the email.",
                "Booked the room at 9.15 for Dr. Who."
            ]
        );
    }
}
