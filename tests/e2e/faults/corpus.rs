//! Generated documents for the fault-injection suite: varied plain-text and Markdown notes
//! about people, organisations and places, so every document has chunks, entities and
//! mentions. Deterministic (a seeded xorshift), so a failure can be replayed.

const FIRST: &[&str] = &[
    "Alice", "Bob", "Maria", "David", "Sophie", "Ahmed", "Elena", "Marco", "Priya", "Thomas",
    "Grace", "Ivan", "Lucia", "Kevin", "Hannah", "Pierre",
];
const LAST: &[&str] = &[
    "Martin", "Chen", "Lopez", "Okafor", "Novak", "Schmidt", "Rossi", "Tanaka", "Dubois",
    "Kowalski", "Haddad", "Fischer",
];
const ORGS: &[&str] = &[
    "Acme Corporation",
    "Northwind Bank",
    "Geneva University",
    "Harbor Committee",
    "Blue River Foundation",
    "Orion Institute",
    "Keller Group",
    "Atlas Energy Company",
];
const PLACES: &[&str] = &[
    "Geneva", "Lyon", "Berlin", "Toronto", "Nairobi", "Oslo", "Lisbon", "Osaka", "Prague", "Dublin",
];
const TOPICS: &[&str] = &[
    "the solar panel project",
    "the water pumps",
    "the quarterly budget",
    "the new warehouse",
    "the hiring plan",
    "the data migration",
    "the safety audit",
    "the bridge repairs",
    "the training programme",
    "the supplier contract",
];
const VERBS: &[&str] = &[
    "presented",
    "reviewed",
    "questioned",
    "approved",
    "postponed",
    "summarised",
    "defended",
    "criticised",
];
const TAILS: &[&str] = &[
    "after a long discussion about costs and risks.",
    "and asked for a revised timeline by the end of the month.",
    "while the team compared three offers from local suppliers.",
    "and promised a written report before the next meeting.",
    "because the measurements from last week looked unusual.",
    "although several members wanted more time to read the figures.",
];

struct Cast {
    people: Vec<String>,
    orgs: Vec<&'static str>,
    places: Vec<&'static str>,
}

/// A seeded generator of notes.
pub struct Corpus {
    state: u64,
    made: usize,
}

impl Corpus {
    pub fn new(seed: u64) -> Self {
        Self {
            state: seed.max(1),
            made: 0,
        }
    }

    fn next(&mut self) -> u64 {
        // xorshift64
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }

    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn person(&mut self) -> String {
        format!("{} {}", self.pick(FIRST), self.pick(LAST))
    }

    /// The people, organisations and places one note talks about: a handful, as in real notes.
    fn cast(&mut self) -> Cast {
        let people = (0..self.range(2, 4)).map(|_| self.person()).collect();
        let orgs = (0..self.range(1, 2)).map(|_| self.pick(ORGS)).collect();
        let places = (0..self.range(1, 2)).map(|_| self.pick(PLACES)).collect();
        Cast {
            people,
            orgs,
            places,
        }
    }

    fn sentence(&mut self, cast: &Cast) -> String {
        let who = cast.people[(self.next() % cast.people.len() as u64) as usize].clone();
        let (org, place) = (self.pick(&cast.orgs), self.pick(&cast.places));
        let (verb, topic, tail) = (self.pick(VERBS), self.pick(TOPICS), self.pick(TAILS));
        match self.next() % 3 {
            0 => format!("{who} from {org} {verb} {topic} in {place} {tail}"),
            1 => format!("In {place}, {who} {verb} {topic} for {org} {tail}"),
            _ => format!("{who} met the team of {org} about {topic} {tail}"),
        }
    }

    fn paragraph(&mut self, cast: &Cast) -> String {
        let n = self.range(2, 5);
        (0..n)
            .map(|_| self.sentence(cast))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The text of a note: Markdown with sections, or plain paragraphs.
    pub fn text(&mut self, markdown: bool) -> String {
        let paragraphs = self.range(1, 4);
        let cast = self.cast();
        let mut out = String::new();
        if markdown {
            out.push_str(&format!("# Notes on {}\n\n", self.pick(TOPICS)));
        }
        for i in 0..paragraphs {
            if markdown && i > 0 && i % 3 == 0 {
                out.push_str(&format!("## Follow-up in {}\n\n", self.pick(PLACES)));
            }
            out.push_str(&self.paragraph(&cast));
            out.push_str("\n\n");
        }
        out
    }

    /// The next new document: (path relative to the watched folder, text). Some live in
    /// sub-folders, some are Markdown.
    pub fn doc(&mut self) -> (String, String) {
        self.made += 1;
        let n = self.made;
        let markdown = self.next().is_multiple_of(2);
        let ext = if markdown { "md" } else { "txt" };
        let folder = ["", "meetings/", "reports/", "field/2025/"][n % 4];
        (format!("{folder}note-{n:04}.{ext}"), self.text(markdown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_documents() {
        let (mut a, mut b) = (Corpus::new(7), Corpus::new(7));
        for _ in 0..5 {
            assert_eq!(a.doc(), b.doc());
        }
        assert_ne!(Corpus::new(8).doc(), Corpus::new(7).doc());
    }
}
