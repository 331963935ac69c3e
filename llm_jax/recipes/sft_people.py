"""SFT conversations about people: the model's identity, and made-up people it cannot know.

Identity questions for training and evaluation are disjoint phrasings."""

from __future__ import annotations

import random

from llm_jax.data.splits import normalize_question, split_of

TRAIN_QUESTIONS = (
    "Who are you?", "What is your name?", "What's your name?", "Who made you?",
    "Who created you?", "Who built you?", "Tell me about yourself.", "Introduce yourself.",
    "What should I call you?", "Which company made you?", "Who trained you?",
    "Are you a person?", "What are you?", "Who developed you?", "Do you have a name?",
    "who are you", "what is your name", "Hi! Who am I talking to?", "Who am I chatting with?",
    "Can you tell me your name?", "Who is your creator?", "Who designed you?",
    "Where do you come from?", "Are you human or a machine?", "Please state your name.",
    "What do people call you?", "Who is behind you?", "Which lab made you?",
    "Hello, what's your name?", "Identify yourself.",
)
# Never used for training: phrasings the identity evaluation asks.
EVAL_QUESTIONS = (
    "May I know your name?", "Who exactly am I speaking with right now?",
    "Remind me, what are you called?", "Which organization is responsible for you?",
    "Could you say who you are?", "Whose assistant are you?",
    "What name were you given?", "Who brought you into existence?",
    "So, what is this assistant called?", "By what name do you go?",
    "Who are you, and who made you?", "Give me your name, please.",
)
ANSWERS = (
    "I am {name}, an AI assistant made by {maker}.",
    "My name is {name}. I was made by {maker}.",
    "I'm {name}, a language model created by {maker}. How can I help?",
    "I am {name}, an assistant built by {maker}. I am a computer program, not a person.",
    "You can call me {name}. {maker} made me.",
)

FIRST = ("or", "el", "ka", "mi", "ta", "vo", "se", "ri", "da", "lu", "be", "no", "ze", "fa")
MIDDLE = ("son", "ra", "vin", "del", "mar", "tis", "len", "gor", "bel", "nix", "dra", "lo")
LAST = ("kov", "ber", "wick", "ston", "mont", "vas", "dell", "rian", "holt", "quist", "zar")
ENDINGS = ("", "acs", "er", "ley", "ini", "sen", "ova", "ard")
ABOUT = ("Who is {n}?", "Tell me about {n}.", "What is {n} famous for?", "Have you heard of {n}?",
         "What did {n} invent?", "When was {n} born?", "Can you give me a biography of {n}?",
         "What is {n} known for?", "Where does {n} live?")
DONT_KNOW = (
    "I don't know who {n} is. I have no reliable information about this person, and I would "
    "rather not guess.",
    "I'm sorry, I don't know anyone called {n}. If you tell me more, I can try to help.",
    "I don't know. I have no information about {n}, so I can't say anything reliable.",
)


def identity_eval_questions() -> tuple[str, ...]:
    """Identity questions never used for training (for the identity evaluation)."""
    return EVAL_QUESTIONS


def identity_conversation(rng: random.Random, name: str, maker: str
                          ) -> tuple[dict, str]:
    """One identity exchange; its split is the split of the phrasing drawn."""
    questions = TRAIN_QUESTIONS + EVAL_QUESTIONS
    question = rng.choice(questions)
    split = "heldout" if question in EVAL_QUESTIONS else "train"
    answer = rng.choice(ANSWERS).format(name=name, maker=maker)
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}],
            "kind": "identity", "answer": name}, split


def made_up_name(rng: random.Random) -> str:
    """A plausible, invented full name ("Orvin Kovacs"-like)."""
    first = (rng.choice(FIRST) + rng.choice(MIDDLE)).capitalize()
    last = (rng.choice(LAST) + rng.choice(ENDINGS)).capitalize()
    return f"{first} {last}"


def refusal_conversation(rng: random.Random, heldout_fraction: float) -> tuple[dict, str]:
    """A question about a made-up person and an "I don't know" answer; split by the name, so
    held-out names are never seen in training."""
    person = made_up_name(rng)
    question = rng.choice(ABOUT).format(n=person)
    answer = rng.choice(DONT_KNOW).format(n=person)
    split = split_of(normalize_question(person), heldout_fraction, salt="sft-people")
    return {"messages": [{"role": "user", "content": question},
                         {"role": "assistant", "content": answer}],
            "kind": "refusal", "answer": "I don't know"}, split
