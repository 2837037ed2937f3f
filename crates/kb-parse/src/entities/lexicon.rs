//! Word lists for the heuristic extractor. Lowercase; looked up through [`is_in`].

use std::collections::HashSet;
use std::sync::OnceLock;

/// Function words and very common words: never entities, break keyphrases.
#[rustfmt::skip]
pub(crate) const STOPWORDS: &[&str] = &[
    "a", "about", "above", "across", "after", "afterwards", "again", "against", "ago", "all",
    "almost", "alone", "along", "already", "also", "although", "always", "am", "among", "an",
    "and", "another", "any", "anybody", "anyhow", "anyone", "anything", "anyway", "anyways",
    "anywhere", "are", "aren't", "around", "as", "at", "away", "back", "be", "became", "because",
    "become", "becomes", "been", "before", "beforehand", "behind", "being", "below", "beside",
    "besides", "between", "beyond", "both", "but", "by", "can", "can't", "cannot", "could",
    "couldn't", "did", "didn't", "do", "does", "doesn't", "doing", "don't", "done", "down",
    "during", "each", "either", "else", "elsewhere", "enough", "even", "ever", "every",
    "everybody", "everyone", "everything", "everywhere", "except", "few", "first", "for",
    "former", "from", "further", "had", "hadn't", "has", "hasn't", "have", "haven't", "having",
    "he", "he'd", "he'll", "he's", "her", "here", "here's", "hers", "herself", "him", "himself",
    "his", "how", "how's", "however", "i", "i'd", "i'll", "i'm", "i've", "if", "in", "indeed",
    "into", "is", "isn't", "it", "it'd", "it'll", "it's", "its", "itself", "just", "last",
    "latter", "least", "less", "let", "let's", "many", "may", "maybe", "me", "meanwhile", "might",
    "mine", "more", "moreover", "most", "mostly", "much", "must", "mustn't", "my", "myself",
    "namely", "neither", "never", "nevertheless", "next", "no", "nobody", "none", "nor", "not",
    "nothing", "now", "nowhere", "of", "off", "often", "on", "once", "one", "only", "onto", "or",
    "other", "others", "otherwise", "ought", "our", "ours", "ourselves", "out", "over", "own",
    "per", "perhaps", "please", "quite", "rather", "really", "same", "second", "several", "shall",
    "shan't", "she", "she'd", "she'll", "she's", "should", "shouldn't", "since", "so", "some",
    "somebody", "somehow", "someone", "something", "sometime", "sometimes", "somewhat",
    "somewhere", "still", "such", "than", "that", "that's", "the", "their", "theirs", "them",
    "themselves", "then", "thence", "there", "there's", "thereafter", "thereby", "therefore",
    "these", "they", "they'd", "they'll", "they're", "they've", "third", "this", "those",
    "though", "through", "throughout", "thru", "thus", "to", "together", "too", "toward",
    "towards", "under", "unless", "until", "up", "upon", "us", "very", "via", "was", "wasn't",
    "we", "we'd", "we'll", "we're", "we've", "were", "weren't", "what", "what's", "whatever",
    "when", "when's", "whenever", "where", "where's", "whereas", "wherever", "whether", "which",
    "while", "who", "who's", "whoever", "whole", "whom", "whose", "why", "why's", "will", "with",
    "within", "without", "won't", "would", "wouldn't", "yet", "you", "you'd", "you'll", "you're",
    "you've", "your", "yours", "yourself", "yourselves", "two", "three", "four", "five", "six",
    "seven", "eight", "nine", "ten", "hundred", "thousand", "million", "billion", "today",
    "tomorrow", "yesterday", "tonight", "mr", "mrs", "ms", "dr", "etc", "ie", "eg", "vs",
];

/// Spoken fillers and back-channel words.
#[rustfmt::skip]
pub(crate) const FILLERS: &[&str] = &[
    "um", "uh", "umm", "uhm", "erm", "er", "hmm", "hm", "mm", "mmm", "mm-hmm", "mhm", "uh-huh",
    "uh-oh", "ah", "aha", "oh", "ooh", "eh", "huh", "yeah", "yep", "yup", "yes", "nope", "okay",
    "ok", "alright", "right", "well", "like", "so", "gonna", "wanna", "gotta", "kinda", "sorta",
    "dunno",
];

/// Common verbs, adjectives, adverbs and vague nouns: not keyphrases on their own.
#[rustfmt::skip]
pub(crate) const NOT_TOPICS: &[&str] = &[
    "able", "add", "added", "agree", "allow", "answer", "ask", "asked", "asking", "bad", "begin",
    "believe", "best", "better", "big", "bring", "call", "called", "came", "certain", "certainly",
    "change", "clear", "clearly", "come", "comes", "coming", "considering", "could", "course",
    "day", "days", "definitely", "different", "doing", "easy", "end", "especially", "exactly",
    "example", "fact", "far", "feel", "felt", "find", "found", "get", "gets", "getting", "give",
    "given", "giving", "go", "goes", "going", "gone", "got", "hand", "happen", "happened", "hard",
    "help", "high", "hope", "idea", "important", "instance", "interesting", "issue", "keep",
    "kind", "large", "later", "lead", "leave", "left", "little", "long", "look", "looked",
    "looking", "looks", "lot", "lots", "low", "made", "make", "makes", "making", "matter",
    "means", "meant", "member", "members", "minute", "minutes", "moment", "need", "needed",
    "needs", "new", "number", "obviously", "old", "part", "particular", "person", "place",
    "point", "points", "possible", "pretty", "probably", "problem", "put", "question",
    "questions", "quick", "reason", "said", "saw", "say", "saying", "says", "see", "seeing",
    "seem", "seems", "seen", "set", "show", "side", "similar", "simply", "small", "sort", "start",
    "started", "stuff", "suppose", "take", "taken", "takes", "taking", "talk", "talked",
    "talking", "tell", "term", "terms", "thing", "things", "think", "thinking", "thought", "time",
    "times", "told", "took", "tried", "true", "try", "trying", "turn", "understand", "use",
    "used", "using", "want", "wanted", "wants", "way", "ways", "week", "weeks", "went", "work",
    "worked", "working", "year", "years", "yes", "yeah", "wait", "whatnot", "bit", "maybe",
    "sorry", "absolutely", "able", "away", "let", "lets", "done", "least", "sure", "mister",
    "madam", "honourable", "honorable", "colleague", "colleagues", "people", "hey", "hi", "hello",
    "bye", "thanks", "thank", "wow", "cool", "great", "fine", "good", "nice", "actually",
    "basically", "literally", "mean", "know", "guess", "anyway", "everybody", "guys", "okay",
    "kind", "ones", "thank", "lot", "whole", "real", "run", "runs", "running", "ran", "continue",
    "continues", "continued", "provide", "provided", "provides", "providing", "ensure",
    "ensuring", "include", "includes", "included", "including", "receive", "received", "create",
    "created", "offer", "offered", "discuss", "discussed", "explain", "explained", "remember",
    "mentioned", "mention", "consider", "considered", "happening", "move", "moving", "open",
    "opened", "read", "write", "written", "wrote", "ready", "whatever", "else", "yesterday",
    "today", "morning", "afternoon", "evening", "tonight", "week", "month", "months", "hour",
    "hours", "second", "seconds", "able", "available", "currently", "recently", "simple", "sure",
    "true", "false", "various", "main", "full", "free", "own", "same", "whole", "next",
    "previous", "following", "per", "able", "across", "within", "without", "according",
    "regarding", "unless", "met", "meet", "meets", "meeting's", "wrote", "presented", "present",
    "hired", "hire", "asks", "became", "bring", "brought", "build", "built", "buy", "bought",
    "choose", "chose", "decide", "describe", "described", "expect", "expected", "fall", "feel",
    "follow", "followed", "gave", "grow", "hear", "heard", "hold", "held", "introduce", "join",
    "joined", "kept", "knew", "learn", "learned", "lose", "lost", "love", "meant", "pay", "paid",
    "play", "played", "prefer", "produce", "raise", "reach", "reached", "remain", "report",
    "reported", "require", "return", "returned", "rise", "sat", "seem", "seemed", "sell", "sold",
    "send", "sent", "serve", "share", "shared", "sit", "speak", "spoke", "spend", "spent",
    "stand", "stay", "stood", "stop", "stopped", "suggest", "suggested", "teach", "understood",
    "visit", "visited", "wait", "walk", "watch", "win", "won", "worry", "later", "anyone's",
    "yeah",
];

/// Titles before a person's name.
#[rustfmt::skip]
pub(crate) const HONORIFICS: &[&str] = &[
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "professor", "hon", "honourable", "honorable",
    "sir", "dame", "lord", "lady", "rev", "reverend", "madam", "madame", "mme", "mlle", "right",
];

/// Roles: stripped from the front of names ("Minister Freeland"); alone they are no entity.
#[rustfmt::skip]
pub(crate) const ROLES: &[&str] = &[
    "chair", "chairman", "chairwoman", "chairperson", "speaker", "president", "minister", "prime",
    "secretary", "director", "manager", "clerk", "deputy", "vice", "acting", "leader", "member",
    "senator", "governor", "mayor", "ceo", "cto", "cfo", "coo", "premier", "king", "queen",
    "prince", "princess", "pope", "general", "captain", "commissioner", "ambassador", "officer",
    "chief", "head", "judge", "justice", "professor", "doctor", "designer", "engineer",
    "developer", "analyst", "architect", "consultant", "coordinator", "representative",
    "spokesperson", "host", "moderator", "chancellor", "treasurer",
];

/// Words that make a capitalized phrase an organization.
#[rustfmt::skip]
pub(crate) const ORG_WORDS: &[&str] = &[
    "inc", "corp", "corporation", "ltd", "llc", "plc", "gmbh", "ag", "sa", "co", "company",
    "companies", "group", "university", "college", "school", "institute", "institution", "bank",
    "committee", "ministry", "department", "agency", "association", "council", "party",
    "parliament", "senate", "congress", "commission", "foundation", "board", "office",
    "authority", "organization", "organisation", "union", "federation", "society", "club", "team",
    "laboratory", "lab", "labs", "center", "centre", "hospital", "court", "army", "navy",
    "police", "bureau", "service", "services", "network", "systems", "technologies", "industries",
    "holdings", "partners", "studio", "studios", "press", "news", "times", "airlines", "motors",
    "bureau", "house", "assembly", "cabinet", "conservatives", "liberals", "democrats",
    "republicans", "government",
];

/// Words that end a capitalized phrase naming a place.
#[rustfmt::skip]
pub(crate) const PLACE_SUFFIXES: &[&str] = &[
    "city", "county", "province", "state", "river", "street", "avenue", "road", "island",
    "islands", "lake", "mountain", "mountains", "valley", "bay", "coast", "beach", "desert",
    "ocean", "sea", "peninsula", "region", "district", "village", "town", "square", "airport",
];

/// Lowercase words allowed inside a capitalized name ("Bank of Canada", "Ludwig van Beethoven").
#[rustfmt::skip]
pub(crate) const CONNECTORS: &[&str] = &[
    "of", "the", "de", "van", "von", "der", "den", "du", "da", "la", "le", "del", "di", "y",
    "for", "on", "&",
];

/// Words that make a chunk worth more: questions, decisions, actions.
#[rustfmt::skip]
pub(crate) const CUE_WORDS: &[&str] = &[
    "decide", "decided", "decision", "decisions", "agree", "agreed", "agreement", "conclude",
    "concluded", "conclusion", "action", "actions", "deadline", "deliver", "deliverable", "todo",
    "assign", "assigned", "responsible", "plan", "plans", "propose", "proposed", "proposal",
    "recommend", "recommendation", "must", "should", "require", "required", "requirement",
    "requirements", "budget", "cost", "price", "goal", "goals", "objective", "priority", "risk",
    "issue", "problem", "solution", "summary", "next", "important", "key", "result", "results",
    "because", "therefore",
];

fn set(words: &'static [&'static str]) -> HashSet<&'static str> {
    words.iter().copied().collect()
}

/// Whether lowercase `word` is in `list` (one hashed set per list, built on first use).
pub(crate) fn is_in(list: List, word: &str) -> bool {
    static SETS: OnceLock<[HashSet<&'static str>; 9]> = OnceLock::new();
    let sets = SETS.get_or_init(|| {
        [
            set(STOPWORDS),
            set(FILLERS),
            set(NOT_TOPICS),
            set(HONORIFICS),
            set(ROLES),
            set(ORG_WORDS),
            set(PLACE_SUFFIXES),
            set(CONNECTORS),
            set(CUE_WORDS),
        ]
    });
    sets[list as usize].contains(word)
}

/// The word lists of this module.
#[derive(Debug, Clone, Copy)]
pub(crate) enum List {
    Stop = 0,
    Filler = 1,
    NotTopic = 2,
    Honorific = 3,
    Role = 4,
    OrgWord = 5,
    PlaceSuffix = 6,
    Connector = 7,
    Cue = 8,
}

/// A stopword or a filler.
pub(crate) fn is_common(word: &str) -> bool {
    is_in(List::Stop, word) || is_in(List::Filler, word)
}
