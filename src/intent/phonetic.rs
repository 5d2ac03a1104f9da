//! How alike two words sound, for words speech-to-text spells as a different, commoner word
//! ("brief" heard as "breathe", "pause" as "post").
//!
//! A word becomes a short phonetic key: English spelling rules in the manner of Metaphone turn
//! letters into sounds ("ph" -> F, "th" -> 0, "tion" -> XN, silent "kn", "gh", final "e"), a
//! group of vowel letters becomes one of five coarse vowel sounds (`A E I O U`: "ea", "ee", "ie"
//! are E; "au", "aw", "oa" are O; "oo", "ou" are U), doubled letters collapse. Keys are compared
//! by a weighted edit distance in which sounds that differ only in voicing or place ("f"/"th",
//! "p"/"b", "s"/"z", "m"/"n") cost half, as do vowels for each other, a lost vowel and "h".
//! The key is computed once per word and kept in its `Shape`, so matching stays allocation-free.

/// Longest key kept; longer words are compared on their first sounds.
const MAX_KEY: usize = 20;
/// True for a vowel sound of a key.
fn vowel_sound(s: u8) -> bool {
    matches!(s, b'A' | b'E' | b'I' | b'O' | b'U')
}

/// A word's phonetic key, fixed-size so it can live in a `Copy` shape.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Key {
    sounds: [u8; MAX_KEY],
    len: u8,
    /// How many consonant sounds the key has; short keys are not compared by sound.
    consonants: u8,
    /// Sum of the insertion costs of the key's sounds, in halves.
    weight: u8,
    /// Which symbols occur (bit per symbol), for a quick bound.
    present: u32,
}

impl Key {
    /// The key of a normalised word; empty for words with anything but ASCII letters.
    pub fn of(word: &str) -> Key {
        let mut key = Key {
            sounds: [0; MAX_KEY],
            len: 0,
            consonants: 0,
            weight: 0,
            present: 0,
        };
        let w = word.as_bytes();
        if w.is_empty() || !w.iter().all(u8::is_ascii_lowercase) {
            return key;
        }
        encode(w, &mut |sound| key.push(sound));
        key
    }

    fn push(&mut self, sound: u8) {
        let len = usize::from(self.len);
        if len >= MAX_KEY || (len > 0 && self.sounds[len - 1] == sound) {
            return;
        }
        self.sounds[len] = sound;
        self.len += 1;
        self.weight += indel(sound);
        self.consonants += u8::from(!vowel_sound(sound) && sound != b'H');
        self.present |= 1 << slot(sound);
    }

    /// The key's sounds.
    pub fn sounds(&self) -> &[u8] {
        &self.sounds[..usize::from(self.len)]
    }

    /// True when the key carries enough sound to compare: two consonants or more. Shorter words
    /// ("on", "it", "go") sound like too many others.
    pub fn comparable(&self) -> bool {
        self.consonants >= 2
    }

    /// An upper bound of [`sound_similarity`]: every sound of the longer key that the other does
    /// not have costs at least half an edit. A symbol one key has and the other lacks occurs at
    /// least once, so the keys share at most their length less their missing symbols.
    pub fn bound(&self, other: &Key) -> f32 {
        let lacking = |a: &Key, b: &Key| (a.present & !b.present).count_ones();
        let shared = (u32::from(self.len).saturating_sub(lacking(self, other)))
            .min(u32::from(other.len).saturating_sub(lacking(other, self)));
        let longest = u32::from(self.len.max(other.len));
        let weight = f32::from(self.weight.max(other.weight)).max(1.0);
        1.0 - (longest.saturating_sub(shared)) as f32 / weight
    }
}

/// How alike two keys sound, 0.0 (nothing alike) to 1.0 (the same sounds).
pub(crate) fn sound_similarity(a: &Key, b: &Key) -> f32 {
    let (x, y) = (a.sounds(), b.sounds());
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    // Edit distance in halves over two rows; keys are at most MAX_KEY long.
    let mut prev = [0u16; MAX_KEY + 1];
    let mut row = [0u16; MAX_KEY + 1];
    for (j, &s) in y.iter().enumerate() {
        prev[j + 1] = prev[j] + u16::from(indel(s));
    }
    for &s in x {
        row[0] = prev[0] + u16::from(indel(s));
        for (j, &t) in y.iter().enumerate() {
            row[j + 1] = (prev[j] + u16::from(substitute(s, t)))
                .min(prev[j + 1] + u16::from(indel(s)))
                .min(row[j] + u16::from(indel(t)));
        }
        prev = row;
    }
    let distance = f32::from(prev[y.len()]);
    let weight = f32::from(a.weight.max(b.weight)).max(1.0);
    (1.0 - distance / weight).max(0.0)
}

fn slot(sound: u8) -> usize {
    if sound == b'0' {
        26
    } else {
        usize::from(sound.saturating_sub(b'A')).min(25)
    }
}

/// Cost in halves of inserting or deleting a sound: vowels and "h" are often lost.
fn indel(sound: u8) -> u8 {
    if vowel_sound(sound) || sound == b'H' {
        1
    } else {
        2
    }
}

/// Cost in halves of hearing sound `b` for sound `a`.
fn substitute(a: u8, b: u8) -> u8 {
    if a == b {
        return 0;
    }
    let near = |x: u8, y: u8| (a == x && b == y) || (a == y && b == x);
    let pairs = [
        (b'B', b'P'),
        (b'D', b'T'),
        (b'G', b'K'),
        (b'F', b'V'),
        (b'S', b'Z'),
        (b'0', b'F'),
        (b'0', b'T'),
        (b'0', b'D'),
        (b'0', b'S'),
        (b'X', b'S'),
        (b'X', b'J'),
        (b'M', b'N'),
        (b'U', b'W'),
        (b'I', b'Y'),
    ];
    let vowels = vowel_sound(a) && vowel_sound(b);
    let glide = (vowel_sound(a) && b == b'H') || (a == b'H' && vowel_sound(b));
    if vowels || glide || pairs.iter().any(|&(x, y)| near(x, y)) {
        1
    } else {
        2
    }
}

fn is_vowel(c: u8) -> bool {
    matches!(c, b'a' | b'e' | b'i' | b'o' | b'u')
}

/// The coarse sound of a vowel group from its first two letters (`second` is 0 for one letter).
fn vowel_of(first: u8, second: u8) -> u8 {
    match (first, second) {
        (b'e', _) | (b'i', b'e') => b'E',
        (b'a', b'u' | b'w') | (b'o', b'a' | b'e' | b'w' | b'i' | b'y' | 0) => b'O',
        (b'o', b'o' | b'u') | (b'u', _) => b'U',
        (b'i' | b'y', _) => b'I',
        (b'o', _) => b'O',
        _ => b'A',
    }
}

/// Feeds the sounds of lowercase ASCII `w` to `out`, by Metaphone-like rules.
fn encode(w: &[u8], out: &mut impl FnMut(u8)) {
    let at = |i: usize| w.get(i).copied().unwrap_or(0);
    let n = w.len();
    // Silent first letters: "knee", "gnome", "psalm", "write", "pneumatic"; "x" sounds "z".
    let mut i = match (at(0), at(1)) {
        (b'k' | b'g' | b'p', b'n') | (b'p', b's') | (b'w', b'r') => 1,
        (b'x', _) => {
            out(b'S');
            1
        }
        _ => 0,
    };
    while i < n {
        let (c, next, after) = (w[i], at(i + 1), at(i + 2));
        let front = matches!(next, b'e' | b'i' | b'y');
        // A doubled consonant sounds once ("ll", "tt"); "cc" before a front vowel is "ks".
        if i > 0 && c == w[i - 1] && !is_vowel(c) && !(c == b'c' && front) {
            i += 1;
            continue;
        }
        let mut step = 1;
        match c {
            b'a' | b'e' | b'i' | b'o' | b'u' => {
                // The whole group of vowel letters, with a "w" or "y" that ends it ("saw", "day").
                let mut end = i + 1;
                while end < n
                    && (is_vowel(w[end])
                        || (matches!(w[end], b'w' | b'y') && !is_vowel(at(end + 1))))
                {
                    end += 1;
                }
                // A final "e" after a consonant is silent ("pause", "time").
                let silent = c == b'e' && i + 1 == n && n > 3 && i > 0 && !is_vowel(w[i - 1]);
                if !silent {
                    out(vowel_of(c, if end > i + 1 { next } else { 0 }));
                }
                step = end - i;
            }
            b'w' if next == b'h' => {
                out(b'W');
                step = 2;
            }
            b'y' | b'w' if is_vowel(next) => out(c.to_ascii_uppercase()),
            b'y' => out(b'I'),
            b'w' => out(b'U'),
            b'b' if i + 1 == n && i > 0 && w[i - 1] == b'm' => {}
            b'c' if next == b'h' => {
                out(if after == b'r' { b'K' } else { b'X' });
                step = 2;
            }
            b'c' if front => out(b'S'),
            b'c' => {
                out(b'K');
                step = if next == b'k' || next == b'q' { 2 } else { 1 };
            }
            b'd' if next == b'g' && matches!(after, b'e' | b'i' | b'y') => {
                out(b'J');
                step = 2;
            }
            b'g' if next == b'h' => {
                // "ghost" keeps it; "light", "though" lose it; "tough" is too rare to special-case.
                if i == 0 {
                    out(b'G');
                }
                step = 2;
            }
            b'g' if next == b'n' && (i + 2 == n || (after == b's' && i + 3 == n)) => {}
            b'g' if next == b'e' && i + 2 == n => out(b'J'),
            b'h' => {
                let opens = i == 0 || is_vowel(w[i - 1]);
                if opens && is_vowel(next) {
                    out(b'H');
                }
            }
            b'n' if next == b'g' && !is_vowel(after) => {
                out(b'N');
                step = 2;
            }
            b'p' if next == b'h' => {
                out(b'F');
                step = 2;
            }
            b'q' => {
                out(b'K');
                if next == b'u' {
                    out(b'W');
                    step = 2;
                }
            }
            b's' if next == b'h' => {
                out(b'X');
                step = 2;
            }
            b's' | b't' if next == b'i' && matches!(after, b'o' | b'a') && i > 0 => out(b'X'),
            b't' if next == b'h' => {
                out(b'0');
                step = 2;
            }
            b't' if next == b'c' && after == b'h' => {
                out(b'X');
                step = 3;
            }
            b'x' => {
                out(b'K');
                out(b'S');
            }
            b'k' | b'f' | b'j' | b'l' | b'm' | b'n' | b'p' | b'r' | b's' | b't' | b'v' | b'z'
            | b'b' | b'd' | b'g' => out(c.to_ascii_uppercase()),
            _ => {}
        }
        i += step;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(word: &str) -> String {
        String::from_utf8_lossy(Key::of(word).sounds()).into_owned()
    }

    fn sim(a: &str, b: &str) -> f32 {
        sound_similarity(&Key::of(a), &Key::of(b))
    }

    #[test]
    fn spelling_rules_give_sounds() {
        assert_eq!(key("pause"), "POS");
        assert_eq!(key("post"), "POST");
        assert_eq!(key("phone"), "FON");
        assert_eq!(key("knight"), "NIT");
        assert_eq!(key("nation"), "NAXIN");
        assert_eq!(key("briefing"), "BREFIN");
        assert_eq!(key("breathing"), "BRE0IN");
        assert_eq!(key("kitchen"), "KIXEN");
        assert_eq!(key("12"), "");
    }

    #[test]
    fn sound_alikes_are_close_and_different_sounds_far() {
        for (a, b) in [
            ("brief", "breathe"),
            ("pause", "post"),
            ("weather", "whether"),
            ("night", "knight"),
        ] {
            assert!(sim(a, b) >= 0.65, "{a} / {b}: {}", sim(a, b));
        }
        for (a, b) in [
            ("pause", "music"),
            ("kitchen", "garage"),
            ("start", "stop"),
            ("open", "close"),
        ] {
            assert!(sim(a, b) < 0.6, "{a} / {b}: {}", sim(a, b));
        }
        assert_eq!(sim("weather", "whether"), 1.0);
    }

    #[test]
    fn bound_is_an_upper_bound() {
        let words = [
            "brief", "breathe", "pause", "post", "kitchen", "garage", "ethereum", "aquarium",
            "library", "memory", "start", "stop", "x", "phone",
        ];
        for a in words {
            for b in words {
                let (ka, kb) = (Key::of(a), Key::of(b));
                assert!(
                    ka.bound(&kb) + 1e-6 >= sound_similarity(&ka, &kb),
                    "{a} {b}"
                );
            }
        }
    }
}
