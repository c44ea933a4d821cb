//! Word lists for captions and corpora. The toy world keeps its own person names (common
//! English first names mixed with names from many languages) so that stage 1's name
//! gazetteer, which lives elsewhere, is not trivially matched to the generator.

use rand::Rng;

pub const FIRST_NAMES: &[&str] = &[
    "James",
    "Mary",
    "John",
    "Linda",
    "Robert",
    "Susan",
    "Michael",
    "Karen",
    "David",
    "Nancy",
    "William",
    "Lisa",
    "Richard",
    "Betty",
    "Thomas",
    "Sandra",
    "Daniel",
    "Ashley",
    "Paul",
    "Emily",
    "Mark",
    "Donna",
    "Steven",
    "Michelle",
    "Andrew",
    "Carol",
    "Kevin",
    "Amanda",
    "Brian",
    "Melissa",
    "George",
    "Deborah",
    "Edward",
    "Rebecca",
    "Ryan",
    "Laura",
    "Jacob",
    "Helen",
    "Gary",
    "Anna",
    "Eric",
    "Emma",
    "Peter",
    "Olivia",
    "Frank",
    "Grace",
    "Sam",
    "Julia",
    "Tom",
    "Kate",
    "Maria",
    "Ana",
    "Carlos",
    "Lucia",
    "Jorge",
    "Sofia",
    "Mateo",
    "Valentina",
    "Diego",
    "Camila",
    "Aiko",
    "Hiroshi",
    "Yuki",
    "Kenji",
    "Mei",
    "Wei",
    "Li",
    "Jun",
    "Min",
    "Hana",
    "Chidi",
    "Amara",
    "Kwame",
    "Ngozi",
    "Tunde",
    "Zainab",
    "Kofi",
    "Abena",
    "Sipho",
    "Thandi",
    "Ingrid",
    "Lars",
    "Astrid",
    "Sven",
    "Freya",
    "Nils",
    "Greta",
    "Henrik",
    "Elin",
    "Bjorn",
    "Priya",
    "Arjun",
    "Ravi",
    "Anjali",
    "Vikram",
    "Deepa",
    "Rahul",
    "Sunita",
    "Omar",
    "Layla",
    "Ahmed",
    "Fatima",
    "Youssef",
    "Noor",
    "Karim",
    "Leila",
    "Tariq",
    "Samira",
    "Dmitri",
    "Olga",
    "Ivan",
    "Natalia",
    "Pavel",
    "Irina",
    "Luca",
    "Giulia",
    "Marco",
    "Chiara",
    "Pierre",
    "Camille",
    "Louis",
    "Claire",
    "Hans",
    "Lena",
    "Jonas",
    "Marta",
    "Pedro",
    "Ines",
    "Rafael",
    "Beatriz",
];

pub const LAST_NAMES: &[&str] = &[
    "Smith",
    "Johnson",
    "Brown",
    "Miller",
    "Davis",
    "Wilson",
    "Moore",
    "Taylor",
    "Anderson",
    "Clark",
    "Lewis",
    "Walker",
    "Hall",
    "Young",
    "King",
    "Wright",
    "Scott",
    "Green",
    "Baker",
    "Adams",
    "Lopez",
    "Garcia",
    "Martinez",
    "Rodriguez",
    "Hernandez",
    "Gonzalez",
    "Perez",
    "Sanchez",
    "Ramirez",
    "Torres",
    "Okafor",
    "Adeyemi",
    "Mensah",
    "Okonkwo",
    "Nkosi",
    "Diallo",
    "Kamara",
    "Banda",
    "Achebe",
    "Osei",
    "Tanaka",
    "Suzuki",
    "Sato",
    "Watanabe",
    "Kim",
    "Park",
    "Chen",
    "Wang",
    "Liu",
    "Nguyen",
    "Berg",
    "Larsen",
    "Nilsson",
    "Johansson",
    "Lindqvist",
    "Dahl",
    "Eriksen",
    "Holm",
    "Strand",
    "Lund",
    "Patel",
    "Sharma",
    "Gupta",
    "Singh",
    "Rao",
    "Iyer",
    "Khan",
    "Haddad",
    "Nasser",
    "Farouk",
    "Rossi",
    "Bianchi",
    "Ricci",
    "Moreau",
    "Dubois",
    "Laurent",
    "Schmidt",
    "Weber",
    "Fischer",
    "Novak",
    "Ivanov",
    "Petrova",
    "Kowalski",
    "Horvat",
    "Silva",
    "Costa",
    "Santos",
    "Oliveira",
    "Reid",
    "Byrne",
];

pub const TITLES: &[&str] = &[
    "President",
    "Coach",
    "Senator",
    "Mayor",
    "Prime Minister",
    "Governor",
    "Captain",
    "Dr.",
    "Minister",
    "Judge",
    "Ambassador",
    "General",
    "Professor",
    "Chancellor",
];

pub const CITIES: &[&str] = &[
    "Geneva", "Ohio", "Leeds", "Oslo", "Lagos", "Madrid", "Osaka", "Toronto", "Berlin", "Nairobi",
    "Lyon", "Denver", "Manila", "Lima", "Porto", "Hamburg", "Seoul", "Accra", "Perth", "Cork",
    "Milan", "Austin", "Dakar", "Krakow", "Bristol", "Havana", "Quito", "Tampa", "Vienna", "Delhi",
];

pub const COUNTRIES: &[&str] = &[
    "France", "Kenya", "Japan", "Brazil", "Canada", "Norway", "India", "Egypt", "Peru", "Poland",
];

pub const VENUES: &[&str] = &[
    "the summit",
    "the ceremony",
    "a rally",
    "the stadium",
    "the town hall",
    "a press conference",
    "the gala",
    "the awards dinner",
    "the festival",
    "city hall",
    "the conference",
    "the arena",
    "the opening night",
    "a charity event",
    "the memorial",
    "the fair",
    "the palace",
    "the club",
];

pub const EVENTS: &[&str] = &[
    "final",
    "state visit",
    "trade talks",
    "film festival",
    "championship",
    "graduation ceremony",
    "peace talks",
    "charity match",
    "book fair",
    "wedding",
    "annual meeting",
    "award ceremony",
];

/// What someone can win (the "won the ..." sentences).
pub const PRIZES: &[&str] = &[
    "the final",
    "the championship",
    "the title",
    "the award",
    "the election",
    "the race",
    "the gold medal",
];

pub const ROLES: &[&str] = &[
    "the mayor of {city}",
    "head coach of the {city} Rovers",
    "chief executive of {city} Steel",
    "a former minister",
    "the ambassador to {country}",
    "the team captain",
    "the festival director",
    "a local resident",
    "the award winner",
    "a war veteran",
    "the new chairman",
    "a student at {city} University",
    "the foreign minister of {country}",
    "the party leader",
    "a retired teacher",
    "the tournament champion",
];

pub const WEEKDAYS: &[&str] = &[
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
];
pub const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

pub const AGENCIES: &[&str] = &["Reuters", "AFP", "Getty Images", "EPA", "PA"];

pub fn pick<'a, R: Rng>(rng: &mut R, xs: &[&'a str]) -> &'a str {
    xs[rng.random_range(0..xs.len())]
}

/// Fills `{city}` and `{country}` slots.
pub fn fill_slots<R: Rng>(rng: &mut R, s: &str) -> String {
    let mut out = s.to_string();
    while let Some(i) = out.find("{city}") {
        out.replace_range(i..i + 6, pick(rng, CITIES));
    }
    while let Some(i) = out.find("{country}") {
        out.replace_range(i..i + 9, pick(rng, COUNTRIES));
    }
    out
}

/// A role for an appositive ("the mayor of Leeds").
pub fn role<R: Rng>(rng: &mut R) -> String {
    let r = pick(rng, ROLES);
    fill_slots(rng, r)
}

pub fn year<R: Rng>(rng: &mut R) -> u32 {
    rng.random_range(1995..2021)
}

/// A date phrase as captions write them, with its leading separator ("" sometimes).
pub fn date_phrase<R: Rng>(rng: &mut R) -> String {
    match rng.random_range(0..6) {
        0 => format!(" on {}", pick(rng, WEEKDAYS)),
        1 => format!(
            " on {} {}, {}",
            pick(rng, MONTHS),
            rng.random_range(1..29),
            year(rng)
        ),
        2 => format!(" in {}", year(rng)),
        3 => format!(", {}", year(rng)),
        4 => format!(" in {} {}", pick(rng, MONTHS), year(rng)),
        _ => String::new(),
    }
}

/// A place phrase with its leading space ("" sometimes).
pub fn place_phrase<R: Rng>(rng: &mut R) -> String {
    match rng.random_range(0..6) {
        0 | 1 => format!(" at {} in {}", pick(rng, VENUES), pick(rng, CITIES)),
        2 => format!(" in {}", pick(rng, CITIES)),
        3 => format!(" during the {} in {}", pick(rng, EVENTS), pick(rng, CITIES)),
        4 => format!(" at {}", pick(rng, VENUES)),
        _ => String::new(),
    }
}

pub fn full_name<R: Rng>(rng: &mut R) -> String {
    format!("{} {}", pick(rng, FIRST_NAMES), pick(rng, LAST_NAMES))
}
