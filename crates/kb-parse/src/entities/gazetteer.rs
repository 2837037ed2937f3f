//! Small built-in gazetteers: places (countries, regions, large cities) and common first
//! names. Lowercase. They classify capitalized phrases; they are no list of what can be found.

use std::collections::HashSet;
use std::sync::OnceLock;

#[rustfmt::skip]
const PLACES: &[&str] = &[
    // continents and regions
    "africa", "antarctica", "asia", "europe", "north america", "south america", "latin america",
    "central america", "oceania", "australasia", "middle east", "scandinavia", "caribbean",
    "balkans", "siberia", "the arctic", "arctic", "sahara",
    // countries
    "afghanistan", "albania", "algeria", "andorra", "angola", "argentina", "armenia", "australia",
    "austria", "azerbaijan", "bahamas", "bahrain", "bangladesh", "barbados", "belarus", "belgium",
    "belize", "benin", "bhutan", "bolivia", "bosnia", "botswana", "brazil", "brunei", "bulgaria",
    "burkina faso", "burundi", "cambodia", "cameroon", "canada", "chad", "chile", "china",
    "colombia", "comoros", "congo", "costa rica", "croatia", "cuba", "cyprus", "czechia",
    "czech republic", "denmark", "djibouti", "dominica", "dominican republic", "ecuador", "egypt",
    "el salvador", "eritrea", "estonia", "eswatini", "ethiopia", "fiji", "finland", "france",
    "gabon", "gambia", "georgia", "germany", "ghana", "greece", "grenada", "guatemala", "guinea",
    "guyana", "haiti", "honduras", "hungary", "iceland", "india", "indonesia", "iran", "iraq",
    "ireland", "israel", "italy", "ivory coast", "jamaica", "japan", "jordan", "kazakhstan",
    "kenya", "kiribati", "kosovo", "kuwait", "kyrgyzstan", "laos", "latvia", "lebanon", "lesotho",
    "liberia", "libya", "liechtenstein", "lithuania", "luxembourg", "madagascar", "malawi",
    "malaysia", "maldives", "mali", "malta", "mauritania", "mauritius", "mexico", "micronesia",
    "moldova", "monaco", "mongolia", "montenegro", "morocco", "mozambique", "myanmar", "namibia",
    "nauru", "nepal", "netherlands", "new zealand", "nicaragua", "niger", "nigeria",
    "north korea", "north macedonia", "norway", "oman", "pakistan", "palau", "palestine",
    "panama", "papua new guinea", "paraguay", "peru", "philippines", "poland", "portugal",
    "qatar", "romania", "russia", "rwanda", "samoa", "san marino", "saudi arabia", "senegal",
    "serbia", "seychelles", "sierra leone", "singapore", "slovakia", "slovenia", "somalia",
    "south africa", "south korea", "korea", "south sudan", "spain", "sri lanka", "sudan",
    "suriname", "sweden", "switzerland", "syria", "taiwan", "tajikistan", "tanzania", "thailand",
    "togo", "tonga", "trinidad", "tunisia", "turkey", "turkmenistan", "tuvalu", "uganda",
    "ukraine", "united arab emirates", "uae", "united kingdom", "united states", "uruguay",
    "uzbekistan", "vanuatu", "vatican", "venezuela", "vietnam", "yemen", "zambia", "zimbabwe",
    "england", "scotland", "wales", "northern ireland", "britain", "great britain", "holland",
    "greenland", "hong kong", "puerto rico", "tibet",
    // US states
    "alabama", "alaska", "arizona", "arkansas", "california", "colorado", "connecticut",
    "delaware", "florida", "hawaii", "idaho", "illinois", "indiana", "iowa", "kansas", "kentucky",
    "louisiana", "maine", "maryland", "massachusetts", "michigan", "minnesota", "mississippi",
    "missouri", "montana", "nebraska", "nevada", "new hampshire", "new jersey", "new mexico",
    "new york", "north carolina", "north dakota", "ohio", "oklahoma", "oregon", "pennsylvania",
    "rhode island", "south carolina", "south dakota", "tennessee", "texas", "utah", "vermont",
    "virginia", "washington", "west virginia", "wisconsin", "wyoming",
    // Canadian provinces and territories
    "alberta", "british columbia", "manitoba", "new brunswick", "newfoundland", "labrador",
    "nova scotia", "ontario", "prince edward island", "quebec", "saskatchewan", "yukon",
    "nunavut", "northwest territories",
    // other large regions
    "bavaria", "catalonia", "flanders", "wallonia", "lombardy", "tuscany", "sicily", "sardinia",
    "corsica", "brittany", "normandy", "provence", "andalusia", "punjab", "bengal", "kashmir",
    "queensland", "victoria", "tasmania", "new south wales",
    // cities
    "london", "paris", "berlin", "madrid", "rome", "milan", "vienna", "zurich", "geneva", "bern",
    "basel", "lausanne", "amsterdam", "rotterdam", "brussels", "antwerp", "lisbon", "porto",
    "barcelona", "valencia", "seville", "munich", "hamburg", "frankfurt", "cologne", "stuttgart",
    "prague", "warsaw", "krakow", "budapest", "bucharest", "sofia", "athens", "istanbul",
    "ankara", "moscow", "saint petersburg", "kyiv", "kiev", "minsk", "stockholm", "oslo",
    "copenhagen", "helsinki", "reykjavik", "dublin", "edinburgh", "glasgow", "manchester",
    "liverpool", "birmingham", "leeds", "bristol", "oxford", "cambridge", "cardiff", "belfast",
    "new york city", "los angeles", "chicago", "houston", "phoenix", "philadelphia",
    "san antonio", "san diego", "dallas", "san francisco", "seattle", "boston", "miami",
    "atlanta", "denver", "detroit", "las vegas", "portland", "austin", "toronto", "montreal",
    "vancouver", "calgary", "edmonton", "ottawa", "winnipeg", "halifax", "quebec city", "regina",
    "saskatoon", "victoria", "hamilton", "kingston", "mexico city", "havana", "bogota", "lima",
    "santiago", "buenos aires", "sao paulo", "rio de janeiro", "caracas", "quito", "cairo",
    "lagos", "nairobi", "johannesburg", "cape town", "casablanca", "tunis", "algiers",
    "addis ababa", "accra", "dakar", "tokyo", "osaka", "kyoto", "beijing", "shanghai", "shenzhen",
    "guangzhou", "seoul", "pyongyang", "taipei", "manila", "jakarta", "bangkok", "hanoi",
    "ho chi minh city", "kuala lumpur", "delhi", "new delhi", "mumbai", "bangalore", "chennai",
    "kolkata", "karachi", "lahore", "islamabad", "dhaka", "kathmandu", "colombo", "tehran",
    "baghdad", "riyadh", "dubai", "abu dhabi", "doha", "jerusalem", "tel aviv", "beirut",
    "damascus", "amman", "sydney", "melbourne", "brisbane", "perth", "adelaide", "auckland",
    "wellington", "phnom penh", "singapore city", "silicon valley",
];

/// Common given names (English-speaking countries and frequent international ones).
#[rustfmt::skip]
const FIRST_NAMES: &[&str] = &[
    "aaron", "adam", "adrian", "ahmed", "alan", "albert", "alex", "alexander", "alexandra",
    "alice", "alicia", "alison", "amanda", "amy", "andrea", "andrew", "andy", "angela", "anita",
    "ann", "anna", "anne", "anthony", "antonio", "arthur", "ashley", "barbara", "ben", "benjamin",
    "bernard", "beth", "betty", "bill", "billy", "bob", "brad", "brandon", "brenda", "brian",
    "bruce", "carl", "carlos", "carol", "caroline", "catherine", "charles", "charlie", "chris",
    "christian", "christina", "christine", "christopher", "claire", "claude", "colin", "craig",
    "cynthia", "daniel", "danielle", "dave", "david", "deb", "deborah", "debra", "dennis",
    "diana", "diane", "donald", "donna", "doris", "dorothy", "douglas", "dylan", "ed", "edward",
    "elena", "elizabeth", "ellen", "emily", "emma", "eric", "erin", "eva", "evelyn", "frances",
    "francis", "frank", "fred", "gary", "george", "gerald", "gloria", "grace", "greg", "gregory",
    "hannah", "harold", "harry", "heather", "helen", "henry", "ian", "jack", "jacob", "james",
    "jamie", "jane", "janet", "jason", "jean", "jeff", "jeffrey", "jennifer", "jeremy", "jerry",
    "jessica", "jim", "joan", "joe", "john", "johnny", "jon", "jonathan", "jose", "joseph",
    "joshua", "joyce", "juan", "judith", "judy", "julia", "julie", "justin", "karen", "kate",
    "katherine", "kathleen", "kathy", "keith", "kelly", "ken", "kenneth", "kevin", "kim",
    "kimberly", "kyle", "larry", "laura", "lauren", "lawrence", "linda", "lisa", "louis",
    "louise", "lucy", "luis", "maria", "marie", "marilyn", "mark", "martha", "martin", "mary",
    "matt", "matthew", "maxime", "megan", "melissa", "michael", "michelle", "mike", "nancy",
    "natalie", "nathan", "nicholas", "nick", "nicole", "noah", "olivia", "pablo", "pamela", "pat",
    "patricia", "patrick", "patty", "paul", "peter", "philip", "pierre", "rachel", "ralph",
    "randy", "raymond", "rebecca", "richard", "rick", "robert", "roger", "ronald", "rose",
    "russell", "ruth", "ryan", "sam", "samantha", "samuel", "sandra", "sara", "sarah", "scott",
    "sean", "sharon", "shirley", "sophia", "sophie", "stephanie", "stephen", "steve", "steven",
    "susan", "teresa", "terry", "thomas", "tim", "timothy", "tina", "todd", "tom", "tony",
    "tracy", "tyler", "victor", "victoria", "vincent", "virginia", "walter", "wayne", "william",
    "willie", "yves", "zachary", "ali", "mohammed", "muhammad", "fatima", "wei", "li", "hiroshi",
    "yuki", "raj", "priya", "amit", "hans", "klaus", "jurgen", "stefan", "francois", "jacques",
    "marc", "luc", "giovanni", "marco", "luca", "sofia", "olga", "ivan", "dmitri", "sergei",
    "anastasia", "ana", "miguel", "javier", "carmen", "lucia",
];

fn set(words: &'static [&'static str]) -> HashSet<&'static str> {
    words.iter().copied().collect()
}

/// Whether lowercase `name` is a known place.
pub(crate) fn is_place(name: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| set(PLACES)).contains(name)
}

/// Whether lowercase `name` is a common given name.
pub(crate) fn is_first_name(name: &str) -> bool {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| set(FIRST_NAMES)).contains(name)
}
