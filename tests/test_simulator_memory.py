"""Conversation memory: facts stated in natural phrasing are remembered, and ordinary questions recall them."""

from __future__ import annotations

import pytest

from course_utils.simulator.memory import acknowledge, recall, remember


def ask(statements: list[str], question: str) -> str | None:
    """The reply to `question` after the user said `statements`, the way compose() calls recall()."""
    user_texts = [*statements, question]
    return recall(question, remember(user_texts), user_texts)


# (what the user said earlier, what they ask now, text the answer must contain)
RECALLED = [
    # names
    (["Hi, I'm Ada Lovelace."], "Who am I?", "Ada Lovelace"),
    (["My name is Ada."], "What's my name?", "Your name is Ada. You told me earlier in this conversation."),
    (["Call me Ishmael."], "Do you remember my name?", "Ishmael"),
    (["I'm Grace and I live in Boston."], "What is my name?", "Your name is Grace."),
    (["This is Grace Hopper speaking."], "Who am I?", "Grace Hopper"),
    (["My name's Alan Turing."], "What's my first name?", "Alan"),
    (["My name is Alan Turing."], "What's my last name?", "Turing"),
    (["you can call me Ludwig van Beethoven"], "what's my full name?", "Ludwig van Beethoven"),
    (["Hi, I'm Ada.", "Actually, call me Augusta."], "What's my name?", "Augusta"),
    (["I am Dr. Jane Foster."], "Who am I?", "Dr. Jane Foster"),
    (["I'm Ada, a nurse from Toronto."], "What's my job?", "nurse"),
    (["I'm Ada, a nurse from Toronto."], "Where am I from?", "Toronto"),
    (["My name is Ada, and I work at Acme Corp as an engineer."], "What do I do for a living?", "engineer"),
    # job and workplace
    (["I work as a nurse in Toronto."], "What's my job?", "nurse"),
    (["I work as a nurse in Toronto."], "Where do I work?", "Toronto"),
    (["I work as a nurse in Toronto."], "What do I do for a living?", "nurse"),
    (["I'm a software engineer at Google."], "What do I do?", "software engineer"),
    (["I'm a software engineer at Google."], "Who do I work for?", "Google"),
    (["My job is teaching."], "What is my occupation?", "teaching"),
    (["I work from home."], "Where do I work?", "from home"),
    (["I work as a nurse in Toronto."], "Can you remind me what my job is?", "nurse"),
    (["I work as a nurse in Toronto."], "What is it that I do for a living?", "nurse"),
    (["I'm currently working as a data analyst."], "Do you remember what I do?", "data analyst"),
    (["I work as a nurse.", "I'm now working as a doctor."], "What's my job?", "doctor"),
    # places
    (["I live in Berlin."], "Where do I live?", "Berlin"),
    (["I'm from Lagos."], "Where am I from?", "Lagos"),
    (["I moved to Lisbon last year."], "Where do I live?", "Lisbon"),
    (["I'm based in New York City."], "Where am I based?", "New York City"),
    (["I grew up in Leeds but I live in London now."], "Where did I grow up?", "Leeds"),
    (["I grew up in Leeds but I live in London now."], "Which city do I live in?", "London"),
    (["I live in Paris.", "I moved to Rome."], "Where do I live?", "Rome"),
    (["I live in Oslo."], "Do you remember where I live?", "Oslo"),
    # pets and people
    (["My dog is called Rex."], "What's my dog's name?", "Rex"),
    (["My dog is called Rex."], "What is my dog called?", "Rex"),
    (["I have a cat named Tom."], "What's the name of my cat?", "Tom"),
    (["I've got a puppy called Bella."], "What is my puppy called?", "Bella"),
    (["My dog Rex is five."], "What did I call my dog?", "Rex"),
    (["Biscuit is my hamster."], "Do you remember my hamster's name?", "Biscuit"),
    (["My wife's name is Mary."], "What's my wife's name?", "Mary"),
    (["My dog is called Rex."], "Do I have any pets?", "Rex"),
    (["My dog is called Rex."], "Do you remember what my dog's name is?", "Rex"),
    # dates and numbers
    (["I was born in 1990."], "When was I born?", "1990"),
    (["I was born in Paris in 1990."], "Where was I born?", "Paris"),
    (["I was born on 3 March 1985."], "What year was I born?", "1985"),
    (["I'm 34 years old."], "How old am I?", "34"),
    (["I'm 25 and live in Madrid."], "Where do I live?", "Madrid"),
    (["I am 41."], "What's my age?", "41"),
    (["My birthday is on May 5th."], "When is my birthday?", "May 5th"),
    (["I have two cats."], "How many cats do I have?", "two"),
    # preferences, likes and favourites
    (["I prefer tea over coffee."], "Which drink do I prefer?", "tea over coffee"),
    (["I prefer tea over coffee."], "Do I prefer tea or coffee?", "tea"),
    (["I'd rather have cats than dogs."], "Which pet do I prefer?", "cats"),
    (["I love jazz and hiking."], "What do I like?", "jazz and hiking"),
    (["I hate mornings."], "What do I dislike?", "mornings"),
    (["I like olives.", "Actually I hate olives."], "Do I like olives?", "No"),
    (["I'm a big fan of chess."], "Do I like chess?", "Yes"),
    (
        ["My favourite colour is blue."],
        "What's my favourite colour?",
        "Your favourite colour is blue, as you told me earlier.",
    ),
    (["Green is my favorite color."], "What is my favorite color?", "Green"),
    (["My favourite food is pizza."], "Which food is my favourite?", "pizza"),
    # other personal details, and everything at once
    (["My email is ada@example.com."], "What's my email?", "ada@example.com"),
    (
        ["My name is Ada and I live in London. I work at the BBC."],
        "What do you know about me?",
        "your name is Ada; you live in London; you work at the BBC",
    ),
]


@pytest.mark.parametrize(("statements", "question", "expected"), RECALLED)
def test_a_stated_fact_is_recalled_in_ordinary_wording(statements: list[str], question: str, expected: str) -> None:
    answer = ask(statements, question)
    assert answer is not None and expected in answer, answer


def test_the_table_covers_at_least_thirty_pairs() -> None:
    assert len(RECALLED) >= 30


# (what the user asks with nothing stated, text of the honest answer naming what was asked)
UNKNOWN = [
    (
        "What's my name?",
        "I don't know your name yet: you haven't told me in this conversation. I only see the "
        "messages sent with each request, so anything said in a conversation I wasn't sent is "
        "unknown to me.",
    ),
    ("Where do I live?", "You haven't told me where you live in this conversation."),
    ("What's my favourite colour?", "You haven't told me your favourite colour in this conversation."),
    ("What's my job?", "You haven't told me what you do for a living in this conversation."),
    ("Where do I work?", "You haven't told me where you work in this conversation."),
    ("What's my dog's name?", "You haven't told me your dog's name in this conversation."),
    ("When was I born?", "You haven't told me when you were born in this conversation."),
    ("How old am I?", "You haven't told me your age in this conversation."),
    ("Which drink do I prefer?", "You haven't told me which drink you prefer in this conversation."),
    ("Where am I from?", "You haven't told me where you're from in this conversation."),
    ("What do you know about me?", "You haven't told me anything about yourself in this conversation yet."),
]


@pytest.mark.parametrize(("question", "expected"), UNKNOWN)
def test_an_unstated_fact_gets_an_honest_answer(question: str, expected: str) -> None:
    assert ask(["Tell me about streaming."], question) == expected


def test_other_facts_do_not_answer_a_different_question() -> None:
    assert (
        ask(["My dog is called Rex."], "What's my cat's name?")
        == "You haven't told me your cat's name in this conversation."
    )
    assert "Rex" not in (ask(["My dog is called Rex."], "Who am I?") or "")


@pytest.mark.parametrize(
    "text",
    [
        "What is streaming?",
        "I'm curious about SSE",
        "I am learning Python",
        "I'm Learning Python.",
        "I'd like to know about tokens.",
        "I love it!",
        "I'm not sure what SSE is.",
        "I'm happy to help.",
        "I work in Python every day.",
        "This is my first notebook.",
        "If I'm from Canada, what changes?",
        "I'm a beginner.",
        "I'm using the async client.",
        "I want to count tokens.",
        "Is my name important here?",
        "What's the best way to stream?",
        "I think the answer is 42.",
        "I'm German.",
        "I'm Jewish.",
        "I'm trying to build a chat app.",
        "Where do I put my API key?",
    ],
)
def test_questions_and_chatter_are_not_remembered_as_facts(text: str) -> None:
    assert remember([text]) == {}
    assert acknowledge(text) is None


@pytest.mark.parametrize(
    "question",
    [
        "What is streaming?",
        "Tell me about tokens",
        "Who am I talking to?",
        "Where's my home directory?",
        "What do I do next?",
        "How many tokens do I have left?",
        "What is my best option for retries?",
        "How do I stream with the SDK?",
        "Where does the event stream end?",
    ],
)
def test_ordinary_questions_are_not_memory_questions(question: str) -> None:
    assert ask(["My name is Ada. I live in Paris."], question) is None


def test_the_conversation_answers_keep_their_committed_wording() -> None:
    texts = ["Hello", "Tell me about SSE", "How many messages have I sent you?"]
    assert recall(texts[-1], {}, texts) == (
        "Before this one, you sent me 2 messages in this conversation, so this is turn 3."
    )
    assert (
        recall("What did I say?", {}, ["My name is Ada.", "What did I say?"])
        == 'Before this message you said: "My name is Ada."'
    )
    assert (
        recall("What did I say?", {}, ["What did I say?"])
        == "This is the first message of our conversation, so you haven't said anything before it."
    )


def test_acknowledgements_keep_their_committed_wording() -> None:
    assert acknowledge("My name is Ada.") == (
        "Nice to meet you, Ada! I'll remember that for as long as this conversation is sent with each request."
    )
    assert acknowledge("My name is Ada and I live in London.") == (
        "Nice to meet you, Ada! London sounds like a good place to live. I'll remember that for as long as this "
        "conversation is sent with each request."
    )
    assert acknowledge("My favourite colour is blue.") == (
        "Thanks for telling me. Noted: your favourite colour is blue. I'll remember that for as long as this "
        "conversation is sent with each request."
    )
    assert acknowledge("I work as a nurse in Toronto.") == (
        "Thanks for telling me. Noted: you work as a nurse in Toronto. I'll remember that for as long as this "
        "conversation is sent with each request."
    )
    assert acknowledge("My name is Ada. Who are you?") is None


def test_a_later_statement_wins() -> None:
    facts = remember(
        [
            "I live in Paris and my favourite colour is red.",
            "I moved to Oslo. My favourite colour is green.",
            "My name is Bo.",
            "Please call me Robert.",
        ]
    )
    assert facts["home"] == "Oslo" and facts["favourite colour"] == "green" and facts["name"] == "Robert"


def test_remembering_is_deterministic_and_pure() -> None:
    texts = ["Hi, I'm Ada Lovelace. I work as a nurse in Toronto.", "My dog is called Rex.", "Who am I?"]
    snapshot = list(texts)
    assert remember(texts) == remember(texts)
    assert ask(texts[:-1], texts[-1]) == ask(texts[:-1], texts[-1])
    assert texts == snapshot
