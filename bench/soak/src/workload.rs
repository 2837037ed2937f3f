//! The changes the soak makes: notes created, edited and deleted at random (seeded), the
//! folder hovering around its starting size; one change in fifty writes a large note (over
//! the 256 KiB inline limit, so its bodies go through the object store and the blob GC).

use std::path::PathBuf;

const PEOPLE: &[&str] = &[
    "Alice Martin",
    "Bob Chen",
    "Maria Lopez",
    "David Okafor",
    "Sophie Novak",
    "Ahmed Haddad",
    "Elena Rossi",
    "Marco Tanaka",
    "Priya Dubois",
    "Thomas Fischer",
];
const ORGS: &[&str] = &[
    "Acme Corporation",
    "Northwind Bank",
    "Geneva University",
    "Harbor Committee",
    "Orion Institute",
    "Atlas Energy Company",
];
const PLACES: &[&str] = &[
    "Geneva", "Lyon", "Berlin", "Toronto", "Nairobi", "Oslo", "Lisbon",
];
const TOPICS: &[&str] = &[
    "the solar panel project",
    "the quarterly budget",
    "the new warehouse",
    "the hiring plan",
    "the data migration",
    "the safety audit",
    "the supplier contract",
];

pub struct Workload {
    root: PathBuf,
    state: u64,
    live: Vec<String>,
    made: usize,
    ops: u64,
    /// The folder's starting size.
    target: usize,
}

impl Workload {
    pub fn new(root: PathBuf, seed: u64) -> Self {
        Self {
            root,
            state: seed.max(1),
            live: Vec::new(),
            made: 0,
            ops: 0,
            target: 0,
        }
    }

    fn next(&mut self) -> u64 {
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

    fn sentence(&mut self) -> String {
        let (who, org, place, topic) = (
            self.pick(PEOPLE),
            self.pick(ORGS),
            self.pick(PLACES),
            self.pick(TOPICS),
        );
        format!("{who} from {org} reviewed {topic} in {place} and asked for a written report. ")
    }

    fn text(&mut self) -> String {
        let large = self.next().is_multiple_of(50);
        let mut out = String::new();
        let paragraphs = 1 + self.next() % 4;
        for _ in 0..paragraphs {
            for _ in 0..(2 + self.next() % 4) {
                out.push_str(&self.sentence());
            }
            out.push_str("\n\n");
        }
        if large {
            let paragraph = out.clone();
            while out.len() < 270 * 1024 {
                out.push_str(&paragraph);
            }
        }
        out
    }

    /// Writes like an editor: a hidden temp file renamed into place.
    fn write(&mut self, rel: &str) -> anyhow::Result<()> {
        let text = self.text();
        let path = self.root.join(rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = self
            .root
            .join(format!(".{}.partial", rel.replace('/', "_")));
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, &path)?;
        Ok(())
    }

    fn create(&mut self) -> anyhow::Result<()> {
        self.made += 1;
        let folder = ["", "meetings/", "reports/"][self.made % 3];
        let rel = format!("{folder}note-{:05}.md", self.made);
        self.write(&rel)?;
        self.live.push(rel);
        Ok(())
    }

    /// The starting folder.
    pub fn seed(&mut self, files: usize) -> anyhow::Result<()> {
        for _ in 0..files {
            self.create()?;
        }
        self.target = files;
        Ok(())
    }

    /// One change: mostly edits, creations and deletions balanced around the start size.
    pub fn step(&mut self) -> anyhow::Result<()> {
        self.ops += 1;
        let roll = self.next() % 10;
        let n = self.live.len();
        if n == 0 || (roll < 2 && n < self.target * 6 / 5) {
            return self.create();
        }
        let i = (self.next() % n as u64) as usize;
        if roll < 4 && n > self.target * 4 / 5 {
            let rel = self.live.swap_remove(i);
            std::fs::remove_file(self.root.join(rel))?;
            return Ok(());
        }
        let rel = self.live[i].clone();
        self.write(&rel)
    }

    pub fn files(&self) -> usize {
        self.live.len()
    }

    pub fn ops(&self) -> u64 {
        self.ops
    }
}
