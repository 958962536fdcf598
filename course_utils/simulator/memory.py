"""Conversation memory: facts the user states about themselves in earlier turns, and answers to questions about them.

The simulator has no memory of its own, exactly like the real API: everything here is recomputed from the user
messages sent with the request. That is the point lesson 04 makes, so the facts must survive ordinary phrasing
("Hi, I'm Ada Lovelace.", "I work as a nurse in Toronto.", "My dog is called Rex.") and the questions must be the
ones a learner would type ("Who am I?", "What do I do for a living?", "What is my dog called?").

Three pure functions: `remember` extracts facts, `recall` answers a question about them (or about the conversation
itself), `acknowledge` replies to a message that only states facts. All are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

__all__ = ["acknowledge", "recall", "remember"]

# ---------------------------------------------------------------------------------------------------------------------
# Building blocks shared by the statement patterns.

# A capitalised word; apostrophes and hyphens keep O'Brien and Mary-Jane whole.
_CAP = r"[A-Z][a-zA-Z'’\-]+"
# Lower-case particles inside full names (Ludwig van Beethoven, Leonardo da Vinci).
_PARTICLE = r"(?:van|von|de|da|del|der|di|du|la|le|bin|ibn)"
# A title stays part of the name ("I am Dr. Jane Foster"); the sentence splitter does not break after it.
_TITLE = r"(?:(?:Dr|Mr|Mrs|Ms|Mx|Prof|Sir|Dame)\.?\s+)"
_FULL_NAME = rf"{_TITLE}?{_CAP}(?:\s+(?:{_PARTICLE}\s+)?{_CAP}){{0,3}}"
# A proper place or organisation: capitalised words, optionally joined by "of"/"upon"/..., optionally "City, Country".
_LINK = r"(?:of|upon|on|de|la|el|am|an|der|sur|en|and)"
_PROPER = rf"(?:[Tt]he\s+)?(?:St\.\s+)?{_CAP}(?:[\s\-]+(?:{_LINK}\s+)?{_CAP}){{0,4}}"
_PLACE = rf"{_PROPER}(?:,\s*{_CAP}(?:\s+{_CAP}){{0,2}})?"
# Where a free-text value ends: punctuation, the end, or a conjunction that starts the next clause.
_END = r"(?=\s*[,.!;:)]|\s*$|\s+(?:and|but|because|so|though|although|since|while|which|who)\b)"
# Adverbs people put between "I" and the verb ("I currently live in", "I'm originally from").
_ADV = r"(?:\s+(?:currently|now|still|just|recently|actually|originally|also|really|mostly|happily))?"
_IM = r"i(?:['’]m|\s+am)"
_MONTH = (
    r"(?:january|february|march|april|may|june|july|august|september|october|november|december"
    r"|jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec)"
)
_ORD = r"\d{1,2}(?:st|nd|rd|th)?"
_DATE = (
    rf"(?:{_ORD}\s+(?:of\s+)?{_MONTH}(?:,?\s+\d{{4}})?|{_MONTH}\s+{_ORD}(?:,?\s+\d{{4}})?"
    rf"|{_MONTH}\s+(?:of\s+)?\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}/\d{{1,2}}/\d{{2,4}}"
    rf"|(?:19|20)\d{{2}}|{_MONTH})"
)

# Words that follow "I'm" / "call me" capitalised but are not names: the statement "I'm Learning Python" or
# "I'm German" must not make the simulator greet "Learning" or "German".
_NOT_NAMES = {
    "A",
    "An",
    "The",
    "Not",
    "So",
    "Very",
    "Just",
    "Also",
    "Here",
    "Back",
    "Sorry",
    "Fine",
    "Good",
    "Ok",
    "Okay",
    "Learning",
    "Trying",
    "Going",
    "Working",
    "Using",
    "Looking",
    "New",
    "Still",
    "Curious",
    "Happy",
    "Glad",
    "Sure",
    "Interested",
    "Ready",
    "Done",
    "Building",
    "Writing",
    "Reading",
    "Studying",
    "Doing",
    "Getting",
    "Having",
    "Really",
    "Well",
    "Great",
    "Confused",
    "Stuck",
    "Excited",
    "Tired",
    "Busy",
    "Unsure",
    "Afraid",
    "Thinking",
    "Python",
    "JavaScript",
    "Java",
    "Rust",
    "Claude",
    "Anthropic",
    "English",
    "German",
    "French",
    "Spanish",
    "Italian",
    "American",
    "British",
    "Canadian",
    "Australian",
    "Japanese",
    "Chinese",
    "Indian",
    "Brazilian",
    "Mexican",
    "Dutch",
    "Irish",
    "Scottish",
    "Welsh",
    "Swiss",
    "Swedish",
    "Norwegian",
    "Danish",
    "Polish",
    "Russian",
    "Korean",
    "Nigerian",
    "Kenyan",
    "Egyptian",
    "Turkish",
    "Greek",
    "Portuguese",
    "Ukrainian",
    "Israeli",
    "Pakistani",
    "Filipino",
    "Vietnamese",
    "Thai",
    "Indonesian",
    "Argentinian",
    "Chilean",
    "Colombian",
    "Peruvian",
    "Belgian",
    "Austrian",
    "Finnish",
    "Czech",
    "Hungarian",
    "Romanian",
    "European",
    "African",
    "Asian",
    "Latino",
    "Latina",
    "Hispanic",
    "Jewish",
    "Catholic",
    "Muslim",
    "Hindu",
    "Buddhist",
    "Atheist",
    "Agnostic",
    "Sikh",
    "Deaf",
    "Vegan",
    "Vegetarian",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "Today",
    "Tomorrow",
    "Yes",
    "No",
    "Hi",
    "Hello",
    "Hey",
    "Thanks",
    "Please",
    "Now",
    "Again",
    "Only",
    "This",
    "That",
    "It",
    "He",
    "She",
    "They",
    "We",
    "Who",
    "What",
    "There",
    "Which",
    "Here's",
    "It's",
    "My",
    "Your",
}
# Technologies that follow "I work in ..." without being a workplace.
_NOT_WORKPLACES = {
    "python",
    "javascript",
    "java",
    "rust",
    "go",
    "typescript",
    "jupyter",
    "notebooks",
    "teams",
    "a team",
    "the team",
    "tech support",
}

# Nouns that "I'm a/an ..." must end in to count as a job; "I'm a big fan" or "I'm a beginner" are not jobs.
_JOBS = {
    "nurse",
    "doctor",
    "teacher",
    "engineer",
    "developer",
    "programmer",
    "designer",
    "scientist",
    "student",
    "lawyer",
    "accountant",
    "architect",
    "artist",
    "writer",
    "author",
    "journalist",
    "chef",
    "cook",
    "baker",
    "pilot",
    "farmer",
    "librarian",
    "pharmacist",
    "dentist",
    "surgeon",
    "physician",
    "vet",
    "veterinarian",
    "professor",
    "lecturer",
    "researcher",
    "analyst",
    "consultant",
    "manager",
    "director",
    "founder",
    "ceo",
    "cto",
    "plumber",
    "electrician",
    "carpenter",
    "mechanic",
    "driver",
    "firefighter",
    "paramedic",
    "police officer",
    "officer",
    "soldier",
    "musician",
    "singer",
    "actor",
    "actress",
    "photographer",
    "editor",
    "translator",
    "waiter",
    "waitress",
    "barista",
    "cashier",
    "clerk",
    "secretary",
    "receptionist",
    "administrator",
    "admin",
    "economist",
    "mathematician",
    "physicist",
    "chemist",
    "biologist",
    "statistician",
    "therapist",
    "psychologist",
    "psychiatrist",
    "counselor",
    "counsellor",
    "midwife",
    "caregiver",
    "carer",
    "tutor",
    "coach",
    "trainer",
    "entrepreneur",
    "freelancer",
    "contractor",
    "intern",
    "technician",
    "sysadmin",
    "tester",
    "marketer",
    "salesperson",
    "banker",
    "trader",
    "broker",
    "investor",
    "judge",
    "historian",
    "linguist",
    "dancer",
    "illustrator",
    "animator",
    "gardener",
    "cleaner",
    "builder",
    "welder",
    "miner",
    "fisherman",
    "sailor",
    "astronaut",
    "professional",
    "specialist",
    "strategist",
    "recruiter",
    "auditor",
    "inspector",
    "surveyor",
}
_PETS = [
    "guinea pig",
    "dog",
    "cat",
    "puppy",
    "kitten",
    "hamster",
    "rabbit",
    "bunny",
    "parrot",
    "budgie",
    "bird",
    "goldfish",
    "fish",
    "horse",
    "pony",
    "turtle",
    "tortoise",
    "snake",
    "lizard",
    "gecko",
    "ferret",
    "mouse",
    "rat",
    "chicken",
    "goat",
    "pig",
]
_RELATIONS = [
    "best friend",
    "wife",
    "husband",
    "partner",
    "spouse",
    "girlfriend",
    "boyfriend",
    "son",
    "daughter",
    "child",
    "kid",
    "baby",
    "brother",
    "sister",
    "mother",
    "mom",
    "mum",
    "father",
    "dad",
    "grandmother",
    "grandma",
    "grandfather",
    "grandpa",
    "aunt",
    "uncle",
    "cousin",
    "niece",
    "nephew",
    "friend",
    "boss",
    "manager",
    "colleague",
    "roommate",
    "flatmate",
    "neighbour",
    "neighbor",
    "teacher",
]
_NAMED = "|".join(re.escape(w) for w in sorted(_PETS + _RELATIONS, key=len, reverse=True))
# Things people count about themselves ("I have two cats"); only these get an "I don't know" answer when asked.
_COUNTABLE = {
    "kids",
    "children",
    "sons",
    "daughters",
    "brothers",
    "sisters",
    "siblings",
    "pets",
    "cats",
    "dogs",
    "grandchildren",
    "cars",
    "rabbits",
    "fish",
    "horses",
    "hamsters",
    "birds",
}
# Personal details stored under their own name by "my X is Y", with the spelling they are filed under.
_SLOTS = {
    "email": "email address",
    "email address": "email address",
    "e-mail": "email address",
    "phone number": "phone number",
    "phone": "phone number",
    "address": "address",
    "nationality": "nationality",
    "middle name": "middle name",
    "nickname": "nickname",
    "username": "username",
    "user name": "username",
    "surname": "last name",
    "last name": "last name",
    "family name": "last name",
    "first name": "first name",
    "blood type": "blood type",
    "star sign": "star sign",
    "zodiac sign": "star sign",
    "height": "height",
    "shoe size": "shoe size",
    "hometown": "hometown",
    "home town": "hometown",
    "hobby": "hobbies",
    "hobbies": "hobbies",
    "pronouns": "pronouns",
    "native language": "native language",
    "first language": "native language",
    "mother tongue": "native language",
}
_SLOT_WORDS = "|".join(re.escape(w) for w in sorted(_SLOTS, key=len, reverse=True))
# What a preferred thing is, so "Which drink do I prefer?" finds "I prefer tea over coffee".
_CATEGORIES = {
    "drink": {
        "tea",
        "coffee",
        "water",
        "juice",
        "beer",
        "wine",
        "milk",
        "soda",
        "cola",
        "lemonade",
        "espresso",
        "latte",
        "cappuccino",
        "hot chocolate",
        "cocoa",
        "whisky",
        "whiskey",
        "gin",
        "vodka",
        "cider",
        "smoothie",
    },
    "food": {
        "pizza",
        "pasta",
        "sushi",
        "burger",
        "burgers",
        "rice",
        "noodles",
        "salad",
        "curry",
        "steak",
        "tacos",
        "chocolate",
        "cake",
        "ice cream",
        "bread",
        "cheese",
        "soup",
        "chicken",
        "fish",
        "vegetables",
    },
    "animal": {"cat", "cats", "dog", "dogs", "rabbit", "rabbits", "horse", "horses", "bird", "birds"},
    "season": {"summer", "winter", "spring", "autumn", "fall"},
    "language": {"python", "javascript", "typescript", "rust", "go", "java", "c", "c++", "ruby", "kotlin", "swift"},
    "editor": {"vim", "emacs", "vs code", "vscode", "pycharm", "nano", "sublime", "neovim"},
    "time": {"mornings", "morning", "evenings", "evening", "nights", "night", "afternoons"},
    "colour": {"red", "blue", "green", "yellow", "purple", "orange", "black", "white", "pink", "grey", "gray"},
    "sport": {
        "football",
        "soccer",
        "tennis",
        "cricket",
        "rugby",
        "basketball",
        "baseball",
        "golf",
        "swimming",
        "running",
        "cycling",
        "hockey",
    },
    "music": {"jazz", "rock", "pop", "classical", "hip hop", "rap", "blues", "metal", "folk", "techno"},
}
_CATEGORY_ALIASES = {
    "beverage": "drink",
    "drinks": "drink",
    "dish": "food",
    "meal": "food",
    "snack": "food",
    "pet": "animal",
    "animals": "animal",
    "programming language": "language",
    "coding language": "language",
    "color": "colour",
    "text editor": "editor",
    "ide": "editor",
    "genre": "music",
    "music genre": "music",
    "time of day": "time",
    "sports": "sport",
}
# "I like it/this/how ..." talks about the conversation, not the user.
_NOT_LIKES = re.compile(
    r"^(?:to|it|its|it's|this|that|these|those|you|your|yours|how|what|when|where|why|if|the way|"
    r"the idea|the fact|being|them|him|her|here|there|a lot|it\b)\b",
    re.I,
)

_SENTENCE = re.compile(r"(?<!\bDr\.)(?<!\bMr\.)(?<!\bMs\.)(?<!\bSt\.)(?<!\bMrs\.)(?<=[.!?;])\s+|\n+")
# Hypotheticals state nothing about the user ("If I'm from Canada, ...", "Imagine I live in Paris").
_HYPOTHETICAL = re.compile(r"^\W*(?:if|what if|suppose|supposing|imagine|pretend|let's say|lets say|say)\b", re.I)


# Every statement pattern below needs one of these words; testing for them first spares most prompts ("Write 500
# words about the ocean") the dozens of patterns, which is most of the simulator's cost per request.
_FIRST_PERSON = re.compile(r"\b(?:i|my|me|mine|this\s+is|name's)\b", re.I)


def _statements(text: str) -> Iterator[str]:
    """The sentences of a message that can state facts: questions and hypotheticals are skipped."""
    text = text.replace("’", "'")
    if not _FIRST_PERSON.search(text):
        return
    for sentence in _SENTENCE.split(text):
        sentence = sentence.strip()
        if (
            sentence
            and not sentence.endswith("?")
            and not _HYPOTHETICAL.match(sentence)
            and _FIRST_PERSON.search(sentence)
        ):
            yield sentence


def _clean(value: str) -> str:
    """A captured value without surrounding spaces and trailing punctuation."""
    return value.strip().rstrip(".,;:!").strip()


def _name_ok(name: str) -> bool:
    """Whether a capitalised phrase after "I'm"/"call me" reads as a name."""
    return name.split()[0] not in _NOT_NAMES


def _trim_name(name: str) -> str:
    """Drop trailing words that are capitalised but not part of a name ("Ada Please" -> "Ada")."""
    words = name.split()
    while len(words) > 1 and words[-1] in _NOT_NAMES:
        words.pop()
    return " ".join(words)


def _is_job(phrase: str) -> bool:
    """Whether "I'm a <phrase>" names an occupation rather than a trait ("I'm a big fan", "I'm a beginner")."""
    words = phrase.lower().split()
    return bool(words) and (words[-1] in _JOBS or " ".join(words[-2:]) in _JOBS)


def _category(item: str) -> str | None:
    """The category of a preferred thing, from a small lexicon, or None."""
    key = re.sub(r"^(?:a|an|the|some)\s+", "", item.lower()).strip()
    for name, members in _CATEGORIES.items():
        if key in members or key.rstrip("s") in members:
            return name
    return None


def _category_of_question(word: str) -> str:
    """The category a question names ("beverage" -> "drink")."""
    word = word.strip().lower()
    return _CATEGORY_ALIASES.get(word, word.rstrip("s") if word.rstrip("s") in _CATEGORIES else word)


def _split_items(phrase: str) -> list[str]:
    """ "jazz, hiking and chess" -> ["jazz", "hiking", "chess"]."""
    parts = re.split(r",\s*(?:and\s+|or\s+)?|\s+and\s+|\s+&\s+", phrase)
    return [_clean(p) for p in parts if _clean(p)]


def _join(items: list[str]) -> str:
    """Items as English: "a", "a and b", "a, b and c"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _article(noun: str) -> str:
    """The noun with the article it reads with: "a nurse", "an engineer"."""
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


# ---------------------------------------------------------------------------------------------------------------------
# Statements. Each pattern is tried on every statement sentence; a later match overwrites an earlier one.

_I = re.I
_NAME_STRONG = re.compile(
    rf"\b(?i:my\s+name\s+is|my\s+name's|name's|(?:you\s+can\s+|please\s+|just\s+)?call\s+me|i\s+go\s+by|"
    rf"people\s+call\s+me|everyone\s+calls\s+me)\s+({_FULL_NAME})"
)
_NAME_WEAK = re.compile(rf"\b(?i:i['’]m|i\s+am)\s+({_FULL_NAME})(?=\s*[,.!;]|\s*$|\s+[a-z])")
_NAME_SPEAKING = re.compile(rf"\b(?i:this\s+is)\s+({_FULL_NAME})\s+(?i:speaking|here|writing|calling)\b")
_HOME = re.compile(
    rf"\b(?i:i{_ADV}\s+(?:live|reside|stay)\s+in|{_IM}{_ADV}\s+(?:living|based|located|staying)\s+in|"
    rf"i{_ADV}\s+(?:moved|relocated)\s+to|i['’]ve{_ADV}\s+(?:moved|relocated)\s+to|i\s+have{_ADV}\s+moved\s+to|"
    rf"my\s+home\s+is\s+in|home\s+for\s+me\s+is|and{_ADV}\s+live\s+in)\s+({_PLACE})"
)
_ORIGIN = re.compile(
    rf"\b(?i:{_IM}{_ADV}\s+from|i{_ADV}\s+come\s+from|i\s+grew\s+up\s+in|i\s+was\s+raised\s+in|"
    rf"my\s+home\s*town\s+is)\s+({_PLACE})"
)
_JOB_WORDS = r"[A-Za-z][A-Za-z\-]*(?:\s+[A-Za-z][A-Za-z\-]*){0,3}?"
_JOB_END = r"(?=\s+(?:in|at|for|with|from|and|but|who|since|based|by|on)\b|\s*[,.!;:]|\s*$)"
_JOB_STRONG = re.compile(
    rf"\b(?:i{_ADV}\s+work\s+as|{_IM}{_ADV}\s+(?:working|employed)\s+as|i{_ADV}\s+work\s+(?:at|for|in)\s+{_PLACE}\s+as|"
    rf"my\s+(?:job|occupation|profession|job\s+title|day\s+job)\s+is)\s+(?:an?\s+)?({_JOB_WORDS}){_JOB_END}",
    _I,
)
# "I'm Ada, a nurse": the name between is case-sensitive, so the cue and the job carry their own (?i:).
_JOB_WEAK = re.compile(rf"\b(?i:{_IM}{_ADV})\s+(?:{_FULL_NAME},\s+)?(?i:an?\s+({_JOB_WORDS}){_JOB_END})")
_WORKPLACE = re.compile(
    rf"\b(?i:i{_ADV}\s+work(?:\s+as\s+(?:an?\s+)?{_JOB_WORDS})?|{_IM}{_ADV}\s+(?:working|employed)"
    rf"(?:\s+as\s+(?:an?\s+)?{_JOB_WORDS})?|{_IM}{_ADV}\s+(?:[A-Z][\w'\-]+,\s+)?an?\s+(?P<trait>{_JOB_WORDS}))"
    rf"\s+(?P<prep>in|at|for|from)\s+(?P<where>{_PLACE}|home|(?i:(?:an?\s+|the\s+)?[a-z]+(?:\s+[a-z]+)?){_END})"
)
_BORN_DATE = re.compile(rf"\bi\s+was\s+born\b[^.!?]*?\b(in|on)\s+({_DATE})\b", _I)
_BORN_PLACE = re.compile(rf"\b(?i:i\s+was\s+born)\b[^.!?]*?\b(?i:in)\s+({_PLACE})")
_BIRTHDAY = re.compile(rf"\bmy\s+birthday(?:\s+is|['’]s)\s+(?:on\s+)?({_DATE})\b", _I)
_AGE = re.compile(
    rf"\b(?:{_IM}{_ADV}\s+(\d{{1,3}})(?:\s*(?:years?|yrs?)[\s\-]+old|\s*y/?o)?(?=\s*[,.!;]|\s*$|\s+and\b|\s+but\b)|"
    rf"{_IM}\s+an?\s+(\d{{1,3}})[\s\-]+years?[\s\-]+old|my\s+age\s+is\s+(\d{{1,3}})|"
    rf"i\s+(?:just\s+)?turned\s+(\d{{1,3}}))",
    _I,
)
_NAMED_AS = re.compile(
    rf"\b(?i:my\s+({_NAMED})(?:['’]s\s+name\s+is|\s+is\s+(?:called|named)|\s+is|\s+goes\s+by))\s+({_FULL_NAME})"
)
_HAVE_NAMED = re.compile(
    rf"\b(?i:i(?:\s+have|\s+own|['’]ve\s+got|['’]ve|\s+have\s+got|\s+got)\s+(?:an?|one|this)\s+"
    rf"(?:[a-z]+\s+)?({_NAMED})"
    rf",?\s+(?:called|named))\s+({_FULL_NAME})"
)
# "My dog Rex is 5": a capitalised word right after the pet or person is its name.
_MY_NAMED = re.compile(rf"\b(?i:my\s+({_NAMED})),?\s+({_FULL_NAME})\b")
_IS_MY = re.compile(rf"^({_FULL_NAME})\s+(?i:is\s+my\s+({_NAMED}))\b")
_FAVOURITE = re.compile(
    r"\bmy\s+fav(?:ou|o)rite\s+([a-z][a-z ]{1,30}?)\s+(?:is|are)\s+([A-Za-z0-9][A-Za-z0-9\- ']{0,40}?)"
    r"(?=[.,!?;]|\s+and\b|$)",
    _I,
)
_FAVOURITE_FIRST = re.compile(
    r"^([A-Za-z0-9][A-Za-z0-9\-']*(?:\s+[A-Za-z0-9\-']+){0,2})\s+(?:is|are)\s+my\s+"
    r"fav(?:ou|o)rite\s+([a-z][a-z ]{1,30}?)(?=[.,!;]|\s+and\b|$)",
    _I,
)
_ITEM = r"[A-Za-z0-9][A-Za-z0-9+#\-' ]{0,40}?"
_PREFER = re.compile(
    rf"\bi(?:\s+(?:much|really|definitely|generally|usually|always|strongly|actually))?\s+prefer\s+({_ITEM})"
    rf"(?:\s+(?:over|to|rather\s+than|instead\s+of|more\s+than)\s+({_ITEM}))?"
    rf"(?=\s*[,.!;]|\s*$|\s+(?:because|but|since|as|though|any\s+day)\b)",
    _I,
)
_RATHER = re.compile(
    rf"\bi(?:['’]d|\s+would)\s+rather\s+(?:have|drink|eat|use|do)?\s*({_ITEM})\s+than\s+"
    rf"(?:have\s+|drink\s+|eat\s+|use\s+|do\s+)?({_ITEM})(?=\s*[,.!;]|\s*$)",
    _I,
)
_LIKE = re.compile(
    r"\bi(?:\s+(?:really|absolutely|just|totally|truly|also|genuinely|kind\s+of|quite|do))?\s+"
    r"(like|love|enjoy|adore|hate|dislike|detest|despise|loathe|can['’]t\s+stand|cannot\s+stand|"
    r"don['’]t\s+like|do\s+not\s+like|don['’]t\s+enjoy|don['’]t\s+love)\s+"
    r"([A-Za-z0-9][A-Za-z0-9+#\-', ]{0,60}?)(?=\s*[.!;]|\s*$|\s+(?:because|but|since|though|as\s+well)\b)",
    _I,
)
_FAN = re.compile(rf"\b{_IM}\s+(not\s+)?(?:a\s+(?:big\s+|huge\s+)?fan\s+of|into)\s+({_ITEM})(?=\s*[,.!;]|\s*$)", _I)
_COUNT = re.compile(
    r"\bi\s+(?:have|['’]ve\s+got|have\s+got)\s+(\d{1,3}|one|two|three|four|five|six|seven|eight|nine|"
    r"ten|no)\s+([a-z]+)\b",
    _I,
)
_SLOT = re.compile(rf"\bmy\s+({_SLOT_WORDS})\s+(?:is|are)\s+([^,;!?]+?)(?=\s*[,;!?]|\.(?:\s|$)|\s*$|\s+and\s+my\b)", _I)
_LIKE_VERBS = {"like", "love", "enjoy", "adore"}
_NAME_SUFFIX = "'s name"


def remember(user_texts: list[str]) -> dict[str, str]:
    """Facts the user stated, read oldest first so that a later statement wins."""
    facts: dict[str, str] = {}
    likes: list[str] = []
    dislikes: list[str] = []

    def feel(item: str, fond: bool) -> None:
        # Liking something un-dislikes it, and the other way round: the latest feeling wins.
        gain, lose = (likes, dislikes) if fond else (dislikes, likes)
        for lst in (gain, lose):
            for old in [x for x in lst if x.lower() == item.lower()]:
                lst.remove(old)
        gain.append(item)

    for text in user_texts:
        for sentence in _statements(text or ""):
            for rx in (_NAME_WEAK, _NAME_SPEAKING, _NAME_STRONG):
                for m in rx.finditer(sentence):
                    if _name_ok(m.group(1)):
                        facts["name"] = _trim_name(m.group(1))
            for m in _HOME.finditer(sentence):
                facts["home"] = _clean(m.group(1))
            for m in _ORIGIN.finditer(sentence):
                facts["origin"] = _clean(m.group(1))
            for m in _JOB_STRONG.finditer(sentence):
                facts["job"] = _clean(m.group(1)).lower() if not m.group(1)[:1].isupper() else _clean(m.group(1))
            for m in _JOB_WEAK.finditer(sentence):
                if _is_job(m.group(1)):
                    facts["job"] = _clean(m.group(1))
            for m in _WORKPLACE.finditer(sentence):
                where = _clean(m.group("where"))
                # "I'm a fan of jazz from Paris" names no workplace: only a real job before the preposition does.
                if m.group("trait") and not _is_job(m.group("trait")):
                    continue
                if m.group("trait") and m.group("prep").lower() == "from":
                    facts["origin"] = where  # "I'm a nurse from Toronto" says where they are from
                    continue
                if where.lower() not in _NOT_WORKPLACES and not re.match(_MONTH + r"\b", where, _I):
                    facts["workplace"] = f"{m.group('prep').lower()} {where}"
            for m in _BORN_DATE.finditer(sentence):
                facts["born"] = f"{m.group(1).lower()} {_clean(m.group(2))}"
            for m in _BORN_PLACE.finditer(sentence):
                if not re.match(_MONTH + r"\b", m.group(1), _I):
                    facts["birthplace"] = _clean(m.group(1))
            for m in _BIRTHDAY.finditer(sentence):
                facts["birthday"] = _clean(m.group(1))
            for m in _AGE.finditer(sentence):
                age = next(g for g in m.groups() if g)
                if 0 < int(age) < 130:
                    facts["age"] = age
            for m in _NAMED_AS.finditer(sentence):
                if _name_ok(m.group(2)):
                    facts[f"{m.group(1).lower()}'s name"] = _trim_name(m.group(2))
            for m in _HAVE_NAMED.finditer(sentence):
                if _name_ok(m.group(2)):
                    facts[f"{m.group(1).lower()}'s name"] = _trim_name(m.group(2))
            for m in _MY_NAMED.finditer(sentence):
                if _name_ok(m.group(2)):
                    facts[f"{m.group(1).lower()}'s name"] = _trim_name(m.group(2))
            for m in _IS_MY.finditer(sentence):
                if _name_ok(m.group(1)):
                    facts[f"{m.group(2).lower()}'s name"] = m.group(1)
            for m in _FAVOURITE.finditer(sentence):
                facts["favourite " + m.group(1).strip().lower()] = m.group(2).strip()
            for m in _FAVOURITE_FIRST.finditer(sentence):
                if m.group(1).lower() not in {"it", "this", "that", "which", "what"}:
                    facts["favourite " + m.group(2).strip().lower()] = m.group(1).strip()
            for m in list(_PREFER.finditer(sentence)) + list(_RATHER.finditer(sentence)):
                first, second = _clean(m.group(1)), _clean(m.group(2) or "")
                if not first or _NOT_LIKES.match(first):
                    continue
                kind = _category(first) or (_category(second) if second else None)
                facts["preference" + (f" {kind}" if kind else "")] = f"{first} over {second}" if second else first
            for m in _LIKE.finditer(sentence):
                phrase = _clean(m.group(2))
                if phrase and not _NOT_LIKES.match(phrase):
                    for item in _split_items(phrase):
                        feel(item, m.group(1).lower() in _LIKE_VERBS)
            for m in _FAN.finditer(sentence):
                if not _NOT_LIKES.match(m.group(2)):
                    feel(_clean(m.group(2)), not m.group(1))
            for m in _COUNT.finditer(sentence):
                noun = m.group(2).lower()
                if noun in _COUNTABLE:
                    facts[f"number of {noun}"] = m.group(1).lower()
            for m in _SLOT.finditer(sentence):
                facts[_SLOTS[m.group(1).lower()]] = _clean(m.group(2))
    if likes:
        facts["likes"] = ", ".join(likes)
    if dislikes:
        facts["dislikes"] = ", ".join(dislikes)
    return facts


# ---------------------------------------------------------------------------------------------------------------------
# Describing facts: one clause per fact, shared by the acknowledgement and the "what do you know about me" answer.


def _job_clause(facts: dict[str, str]) -> str:
    """The clause "you work as a nurse in Toronto", or whichever half of it is known."""
    job, where = facts.get("job"), facts.get("workplace")
    if job and job.endswith("ing") and " " not in job:
        clause = f"your job is {job}" + (f" and you work {where}" if where else "")
    elif job:
        clause = f"you work as {_article(job)}" + (f" {where}" if where else "")
    else:
        clause = f"you work {where}"
    return clause


def _clauses(facts: dict[str, str]) -> Iterator[str]:
    """One clause per remembered fact, in the order they were first stated (the name is handled by the caller)."""
    job_done = born_done = False
    for key, value in facts.items():
        if key == "name":
            continue
        if key in ("job", "workplace"):
            if not job_done:
                job_done = True
                yield _job_clause(facts)
        elif key == "home":
            yield f"you live in {value}"
        elif key == "origin":
            yield f"you're from {value}"
        elif key in ("birthplace", "born"):
            if not born_done:
                born_done = True
                place = f" in {facts['birthplace']}" if "birthplace" in facts else ""
                yield f"you were born{place}" + (f" {facts['born']}" if "born" in facts else "")
        elif key == "birthday":
            yield f"your birthday is {value}"
        elif key == "age":
            yield f"you're {value} years old"
        elif key.startswith("preference"):
            yield f"you prefer {value}"
        elif key == "likes":
            yield f"you like {_join(value.split(', '))}"
        elif key == "dislikes":
            yield f"you don't like {_join(value.split(', '))}"
        elif key.startswith("number of "):
            yield f"you have {value} {key[len('number of ') :]}"
        else:
            yield f"your {key} is {value}"


def acknowledge(text: str) -> str | None:
    """A reply to a message that only states facts ("My name is Ada."), so the next turn can recall them."""
    stated = remember([text])
    if not stated or "?" in text:
        return None
    parts = [f"Nice to meet you, {stated['name']}!"] if "name" in stated else ["Thanks for telling me."]
    if "home" in stated:
        # Kept word for word from the first simulator: committed lesson outputs may show it.
        parts.append(f"{stated['home']} sounds like a good place to live.")
    parts += [f"Noted: {clause}." for clause in _clauses({k: v for k, v in stated.items() if k != "home"})]
    parts.append("I'll remember that for as long as this conversation is sent with each request.")
    return " ".join(parts)


# ---------------------------------------------------------------------------------------------------------------------
# Questions. Each handler returns an answer or None; the first that answers wins. Questions are matched on the
# lower-cased text with curly apostrophes straightened and runs of spaces collapsed.

_NO_NAME = (
    "I don't know your name yet: you haven't told me in this conversation. I only see the messages "
    "sent with each request, so anything said in a conversation I wasn't sent is unknown to me."
)
# "Do you remember ...", "Tell me ...": the lead-ins that turn a fact into a question about it.
_KNOW = (
    r"(?:(?:do|did)\s+you\s+(?:still\s+)?(?:know|remember|recall)|can\s+you\s+(?:remember|recall|tell\s+me)"
    r"|tell\s+me|remind\s+me(?:\s+of)?|have\s+i\s+told\s+you|did\s+i\s+(?:tell\s+you|mention|say))"
)
_WHATS = r"what(?:'s|\s+is|\s+was|\s+are|\s+were)"
_ASK = rf"(?:{_WHATS}|{_KNOW})"


def _any(*alternatives: str) -> re.Pattern[str]:
    """One pattern matching any of the alternatives as whole words (the end may be a "?", hence no final \\b)."""
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")(?![a-z])")


def _unknown(what: str) -> str:
    """The honest answer for a fact the conversation never stated."""
    return f"You haven't told me {what} in this conversation."


_Q_NAME_PART = re.compile(rf"\b{_ASK}\s+my\s+(first|last|family|sur|middle)\s*name\b")
_Q_NAME = _any(
    rf"{_WHATS}\s+my\s+(?:full\s+)?name",
    r"who\s+am\s+i(?!\s+(?:talking|speaking|chatting|writing|to|with))",  # "Who am I talking to?" asks about Claude
    rf"{_KNOW}\s+(?:my\s+(?:full\s+)?name|who\s+i\s+am)",
    r"what\s+my\s+name\s+is",
    r"what\s+(?:do|should)\s+you\s+call\s+me",
    r"what\s+did\s+i\s+(?:say|tell\s+you)\s+my\s+name\s+(?:is|was)",
    r"what\s+name\s+did\s+i\s+(?:give|tell|say)",
)
_Q_BIRTHPLACE = _any(r"where\s+(?:was\s+i|i\s+was)\s+born")
_Q_ORIGIN = _any(
    r"where\s+(?:am\s+i|i\s+am|i'm)\s+(?:originally\s+)?from",
    r"where\s+(?:do\s+)?i\s+come\s+from",
    r"where\s+did\s+i\s+grow\s+up",
    r"what(?:'s|\s+is)\s+my\s+home\s*town",
    r"(?:what|which)\s+(?:city|town|country|place)\s+(?:am\s+i|i'm|i\s+am)\s+from",
)
_Q_HOME = _any(
    r"where\s+(?:do\s+)?i\s+(?:live|stay|reside)",
    r"where\s+(?:am\s+i|i\s+am|i'm)\s+(?:based|living|located|staying)",
    # "Where's my home directory?" is a shell question, not a memory one.
    r"where(?:'s|\s+is)\s+(?:my\s+)?home(?:\s+for\s+me)?(?!\s*(?:directory|folder|page|dir|screen))",
    r"where\s+did\s+i\s+(?:move|relocate)",
    r"(?:what|which)\s+(?:city|town|country|place)\s+(?:do\s+i\s+live|am\s+i\s+(?:in|based|living)|i\s+live"
    r"|did\s+i\s+move)",
)
_Q_WORKPLACE = _any(
    r"where\s+(?:do\s+)?i\s+work",
    r"where\s+(?:am\s+i|i\s+am|i'm)\s+(?:employed|working)",
    r"who\s+(?:do\s+)?i\s+work\s+for",
    r"(?:what|which)\s+(?:company|firm|organi[sz]ation|employer)\s+(?:do\s+)?i\s+work",
    r"who(?:'s|\s+is)\s+my\s+employer",
    r"where(?:'s|\s+is)\s+my\s+(?:job|work|workplace|office)",
)
_Q_JOB = _any(
    rf"{_WHATS}\s+my\s+(?:job|occupation|profession|job\s+title|line\s+of\s+work|work|day\s+job|career)",
    rf"{_KNOW}\s+(?:my\s+(?:job|occupation|profession)|what\s+i\s+do)",
    r"what\s+my\s+(?:job|occupation|profession)\s+is",
    r"what\s+(?:do|did)\s+i\s+(?:say\s+i\s+)?do\s+for\s+(?:a\s+living|work|money)",
    r"what\s+i\s+do\s+for\s+work",
    r"i\s+do\s+for\s+a\s+living",  # "What is it that I do for a living?"
    r"what\s+do\s+i\s+do\s*[?.!]*$",  # only the whole question: "What do I do next?" is not about a job
    r"what\s+do\s+i\s+work\s+as",
    r"what\s+(?:kind|type|sort)\s+of\s+(?:work|job)\s+do\s+i",
    r"how\s+do\s+i\s+(?:earn|make)\s+(?:a|my)\s+living",
    r"what\s+am\s+i\s+by\s+(?:trade|profession)",
)
_Q_BIRTHDAY = _any(r"when(?:'s|\s+is)\s+my\s+birthday", rf"{_ASK}\s+my\s+birthday", r"when\s+my\s+birthday\s+is")
_Q_BORN = _any(
    r"when\s+(?:was\s+i|i\s+was)\s+born",
    r"what\s+year\s+(?:was\s+i|i\s+was|did\s+i\s+say\s+i\s+was)\s+born",
    rf"{_ASK}\s+my\s+(?:birth\s*date|date\s+of\s+birth|birth\s+year|year\s+of\s+birth|dob)",
)
_Q_AGE = _any(r"how\s+old\s+(?:am\s+i|i\s+am)", rf"{_ASK}\s+my\s+age")
_Q_NAMED = _any(
    rf"{_ASK}\s+(?:the\s+name\s+of\s+)?my\s+(?P<a>{_NAMED})(?:'s|s')?(?:\s*(?:name|called|named))?",
    rf"what\s+did\s+i\s+(?:call|name)\s+my\s+(?P<b>{_NAMED})",
    rf"what\s+my\s+(?P<c>{_NAMED})(?:'s\s+name\s+is|\s+is\s+called)",
    rf"(?:what|who)\s+is\s+my\s+(?P<d>{_NAMED})\s+called",
    rf"who(?:'s|\s+is)\s+my\s+(?P<e>{_NAMED})",
)
_Q_PETS = _any(
    r"do\s+i\s+have\s+(?:a\s+|any\s+)?pets?", r"what\s+pets?\s+do\s+i\s+have", r"tell\s+me\s+about\s+my\s+pets?"
)
_Q_FAVOURITE = [
    re.compile(r"\bwhat(?:'s|\s+is|\s+are)\s+my\s+fav(?:ou|o)rite\s+([a-z ]+?)(?:\s+again)?\s*[?.!]*$"),
    re.compile(rf"\b{_KNOW}\s+(?:what\s+)?my\s+fav(?:ou|o)rite\s+([a-z]+(?:\s+[a-z]+)?)"),
    re.compile(r"\b(?:which|what)\s+([a-z]+(?:\s+[a-z]+)?)\s+is\s+my\s+fav(?:ou|o)rite\b"),
]
_Q_EITHER = re.compile(r"\bdo\s+i\s+(?:prefer|like)\s+(.+?)\s+or\s+(.+?)(?:\s+(?:more|better|best))?\s*[?.!]*$")
_Q_PREFER = re.compile(
    r"\b(?:which|what)\s+(?:([a-z]+(?:\s+[a-z]+)?)\s+)?(?:do|did)\s+i\s+(?:say\s+i\s+)?"
    r"(?:prefer|like\s+(?:best|better|more|most))\b|\bwhat(?:'s|\s+is|\s+are)\s+my\s+preferences?\b"
)
_Q_DO_I_LIKE = re.compile(r"\bdo\s+i\s+(like|love|enjoy|hate|dislike)\s+(.+?)\s*[?.!]*$")
_Q_DISLIKES = _any(
    r"what\s+(?:things\s+)?do\s+i\s+(?:hate|dislike|not\s+like|can't\s+stand)", r"what\s+don't\s+i\s+like"
)
_Q_LIKES = _any(
    r"what\s+(?:things\s+)?do\s+i\s+(?:like|love|enjoy)(?:\s+doing)?\s*[?.!]*$",
    rf"{_ASK}\s+my\s+(?:hobbies|hobby|interests|likes)",
    r"what\s+am\s+i\s+(?:into|a\s+fan\s+of)",
)
_Q_COUNT = re.compile(r"\bhow\s+many\s+([a-z]+)\s+(?:do\s+i\s+have|have\s+i\s+got|did\s+i\s+say\s+i\s+have)\b")
_Q_SLOT = re.compile(rf"\b{_ASK}\s+my\s+({_SLOT_WORDS})\s*[?.!]*$")
_Q_ABOUT_ME = _any(
    r"what\s+(?:do|did)\s+you\s+(?:know|remember|recall)\s+about\s+me",
    r"what\s+have\s+i\s+told\s+you(?:\s+about\s+(?:me|myself))?",
    r"tell\s+me\s+(?:everything\s+|what\s+you\s+know\s+)?about\s+me(?:self)?",
    r"(?:do|did)\s+you\s+remember\s+(?:me|anything\s+about\s+me)",
    r"what\s+do\s+you\s+know\s+of\s+me",
)


def _ask_name(q: str, facts: dict[str, str]) -> str | None:
    """Who the user is: the whole name, or its first or last part."""
    part = _Q_NAME_PART.search(q)
    if part:
        kind = {"sur": "last", "family": "last"}.get(part.group(1), part.group(1))
        words = facts.get("name", "").split()
        derived = words[0] if kind == "first" and words else words[-1] if kind == "last" and len(words) > 1 else None
        value = facts.get(f"{kind} name") or derived
        return f"Your {kind} name is {value}, as you told me earlier." if value else _unknown(f"your {kind} name")
    if _Q_NAME.search(q):
        # Both sentences are shown word for word in lesson 04's committed outputs.
        return (
            f"Your name is {facts['name']}. You told me earlier in this conversation." if "name" in facts else _NO_NAME
        )
    return None


def _ask_place(q: str, facts: dict[str, str]) -> str | None:
    """Where the user lives, comes from or was born."""
    if _Q_BIRTHPLACE.search(q):
        return (
            f"You told me you were born in {facts['birthplace']}."
            if "birthplace" in facts
            else _unknown("where you were born")
        )
    if _Q_ORIGIN.search(q):
        if "origin" in facts:
            return f"You told me you're from {facts['origin']}."
        if "hometown" in facts:
            return f"You told me your hometown is {facts['hometown']}."
        return f"You told me you live in {facts['home']}." if "home" in facts else _unknown("where you're from")
    if _Q_HOME.search(q):
        if "home" in facts:
            return f"You told me you live in {facts['home']}."
        if "origin" in facts:
            return f"You told me you're from {facts['origin']}; you haven't said where you live now."
        return "You haven't told me where you live in this conversation."
    return None


def _ask_work(q: str, facts: dict[str, str]) -> str | None:
    """What the user does for a living and where."""
    if _Q_WORKPLACE.search(q):
        if "workplace" in facts:
            return f"You told me {_job_clause({'workplace': facts['workplace']})}."
        if "job" in facts:
            return f"You told me {_job_clause({'job': facts['job']})}, but not where you work."
        return _unknown("where you work")
    if _Q_JOB.search(q):
        if "job" in facts:
            return f"You told me {_job_clause(facts)}."
        if "workplace" in facts:
            return f"You told me you work {facts['workplace']}, but not what your job is."
        return _unknown("what you do for a living")
    return None


def _ask_dates(q: str, facts: dict[str, str]) -> str | None:
    """The user's birthday, birth date or age."""
    if _Q_BIRTHDAY.search(q):
        if "birthday" in facts:
            return f"You told me your birthday is {facts['birthday']}."
        if "born" in facts and not re.fullmatch(r"in \d{4}", facts["born"]):
            return f"You told me you were born {facts['born']}."
        return _unknown("your birthday")
    if _Q_BORN.search(q):
        if "born" in facts:
            return f"You told me you were born {facts['born']}."
        if "birthday" in facts:
            return f"You told me your birthday is {facts['birthday']}, but not the year you were born."
        return _unknown("when you were born")
    if _Q_AGE.search(q):
        if "age" in facts:
            return f"You told me you're {facts['age']} years old."
        if "born" in facts:
            # No clock here on purpose: a reply must not change with the date it is computed on.
            return f"You haven't told me your age in this conversation, but you said you were born {facts['born']}."
        return _unknown("your age")
    return None


def _ask_named(q: str, facts: dict[str, str]) -> str | None:
    """The name of the user's pet or of someone close to them."""
    m = _Q_NAMED.search(q)
    if m:
        key = next(g for g in m.groups() if g) + _NAME_SUFFIX
        return f"Your {key} is {facts[key]}, as you told me earlier." if key in facts else _unknown(f"your {key}")
    if _Q_PETS.search(q):
        pets = [
            f"your {key[: -len(_NAME_SUFFIX)]} {value}"
            for key, value in facts.items()
            if key.endswith(_NAME_SUFFIX) and key[: -len(_NAME_SUFFIX)] in _PETS
        ]
        return f"You told me about {_join(pets)}." if pets else _unknown("about any pets")
    return None


def _same_thing(a: str, b: str) -> bool:
    """Whether two favourite/category words mean the same ("colour"/"color", "animals"/"animal")."""

    def norm(word: str) -> str:
        return re.sub(r"our\b", "or", word.strip().lower()).rstrip("s")

    return norm(a) == norm(b)


def _ask_favourite(q: str, facts: dict[str, str]) -> str | None:
    """The user's favourite something, in the question's own spelling."""
    m = next((found for rx in _Q_FAVOURITE if (found := rx.search(q))), None)
    if not m:
        return None
    thing = re.sub(r"\s+(?:is|was|are)$", "", m.group(1).strip())
    for key, value in facts.items():
        if key.startswith("favourite ") and _same_thing(key[len("favourite ") :], thing):
            # Kept word for word from the first simulator.
            return f"Your favourite {thing} is {value}, as you told me earlier."
    preferred = facts.get(f"preference {_category_of_question(thing)}")
    if preferred:
        return f"You haven't told me your favourite {thing}, but you said you prefer {preferred}."
    return f"You haven't told me your favourite {thing} in this conversation."


def _ask_preference(q: str, facts: dict[str, str]) -> str | None:
    """Which of two things, or which of a kind, the user prefers."""
    prefs = {k: v for k, v in facts.items() if k.startswith("preference")}
    either = _Q_EITHER.search(q)
    if either:
        options = [_clean(either.group(1)), _clean(either.group(2))]
        for value in reversed(list(prefs.values())):
            chosen = value.split(" over ")[0]
            if any(_same_thing(option, chosen) for option in options):
                return f"You prefer {value}, as you told me earlier."
        return _unknown(f"whether you prefer {options[0]} or {options[1]}")
    which = _Q_PREFER.search(q)
    if not which:
        return None
    word = (which.group(1) or "").strip()
    if word and word not in {"one", "thing", "things"}:
        preferred = prefs.get(f"preference {_category_of_question(word)}") or prefs.get("preference")
        if preferred:
            return f"You prefer {preferred}, as you told me earlier."
        favourite = next(
            (v for k, v in facts.items() if k.startswith("favourite ") and _same_thing(k[len("favourite ") :], word)),
            None,
        )
        if favourite:
            return f"Your favourite {word} is {favourite}, as you told me earlier."
        return _unknown(f"which {word} you prefer")
    return f"You told me you prefer {_join(list(prefs.values()))}." if prefs else _unknown("what you prefer")


def _ask_likes(q: str, facts: dict[str, str]) -> str | None:
    """What the user likes or dislikes, or whether they like one thing."""
    likes = facts["likes"].split(", ") if "likes" in facts else []
    dislikes = facts["dislikes"].split(", ") if "dislikes" in facts else []
    one = _Q_DO_I_LIKE.search(q)
    if one:
        item = _clean(one.group(2))
        if any(_same_thing(item, x) for x in likes):
            return f"Yes: you told me you like {item}."
        if any(_same_thing(item, x) for x in dislikes):
            return f"No: you told me you don't like {item}."
        return _unknown(f"whether you {one.group(1)} {item}")
    if _Q_DISLIKES.search(q):
        return f"You told me you don't like {_join(dislikes)}." if dislikes else _unknown("what you dislike")
    if _Q_LIKES.search(q):
        found = ([facts["hobbies"]] if "hobbies" in facts else []) + likes
        return f"You told me you like {_join(found)}." if found else _unknown("what you like")
    return None


def _ask_count(q: str, facts: dict[str, str]) -> str | None:
    """How many children, pets or siblings the user said they have."""
    m = _Q_COUNT.search(q)
    if not m:
        return None
    noun = m.group(1)
    if f"number of {noun}" in facts:
        return f"You told me you have {facts[f'number of {noun}']} {noun}."
    # "How many tokens do I have left?" is a course question, so only personal counts get an "unknown" answer.
    return _unknown(f"how many {noun} you have") if noun in _COUNTABLE else None


def _ask_slot(q: str, facts: dict[str, str]) -> str | None:
    """A personal detail filed under its own name (email address, nickname, ...)."""
    m = _Q_SLOT.search(q)
    if not m:
        return None
    key = _SLOTS[m.group(1)]
    if key == "hobbies" and key not in facts:
        return None  # "What are my hobbies?" falls through to the likes answer
    return f"Your {key} is {facts[key]}, as you told me earlier." if key in facts else _unknown(f"your {key}")


def _ask_about_me(q: str, facts: dict[str, str]) -> str | None:
    """Everything the user has said about themselves."""
    if not _Q_ABOUT_ME.search(q):
        return None
    clauses = ([f"your name is {facts['name']}"] if "name" in facts else []) + list(_clauses(facts))
    if not clauses:
        return "You haven't told me anything about yourself in this conversation yet."
    return "Here is what you've told me in this conversation: " + "; ".join(clauses) + "."


def _ask_conversation(q: str, user_texts: list[str]) -> str | None:
    """How many messages came before, or what the previous one said."""
    # These two answers are shown word for word in lesson 04's committed outputs.
    earlier = len(user_texts) - 1
    if re.search(r"\bhow many (messages|turns|questions)\b", q):
        noun = "message" if earlier == 1 else "messages"
        return f"Before this one, you sent me {earlier} {noun} in this conversation, so this is turn {earlier + 1}."
    if re.search(r"\bwhat did i (just )?(say|ask|tell you)\b", q):
        if earlier >= 1:
            return f'Before this message you said: "{user_texts[-2].strip()}"'
        return "This is the first message of our conversation, so you haven't said anything before it."
    return None


_FACT_QUESTIONS: list[Callable[[str, dict[str, str]], str | None]] = [
    _ask_name,
    _ask_place,
    _ask_work,
    _ask_dates,
    _ask_named,
    _ask_favourite,
    _ask_preference,
    _ask_likes,
    _ask_count,
    _ask_slot,
    _ask_about_me,
]


def recall(question: str, facts: dict[str, str], user_texts: list[str]) -> str | None:
    """Answer a question about the user or the conversation itself, or None if it is not one."""
    q = " ".join(question.lower().replace("’", "'").split())
    for ask in _FACT_QUESTIONS:
        answer = ask(q, facts)
        if answer is not None:
            return answer
    return _ask_conversation(q, user_texts)
