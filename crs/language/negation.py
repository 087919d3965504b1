"""Clauses and negation scope: whether a word of a message is wanted or unwanted.

A negation cue ("no", "not", "hate", "anything but", "except", ...) makes every later attribute or
item of its clause unwanted, until a positive word lifts it ("no horror I want comedy") or the
clause ends (clause punctuation, "but", "though", "instead"). Scoping to the clause rather than
to the next word is what reads "no horror or thrillers, but I love 90s comedies" right: "horror"
and "thrillers" unwanted, "90s" and "comedies" wanted.
"""

from __future__ import annotations

from collections.abc import Sequence

from crs.language.lexicon import LEXICON


def is_boundary(token: str) -> bool:
    """Whether `token` ends a clause."""
    return token in LEXICON.boundary_punctuation or token in LEXICON.boundary_words


def first_clause(tokens: Sequence[str]) -> list[str]:
    """The words of the first non-empty clause: an answer to a question is read from it alone."""
    clause: list[str] = []
    for token in tokens:
        if is_boundary(token):
            if clause:
                break
            continue
        clause.append(token)
    return clause


def negated_at(tokens: Sequence[str], position: int) -> bool:
    """Whether the word at `position` lies in the scope of a negation of its clause."""
    lexicon = LEXICON
    negated = False
    i = position - 1
    start = 0
    while i >= 0:
        # "anything but X" negates X: that "but" does not start a new clause.
        quantified = i > 0 and tokens[i - 1] in lexicon.boundary_quantifiers
        if tokens[i] in lexicon.boundary_punctuation or (
            tokens[i] in lexicon.boundary_words and not quantified
        ):
            start = i + 1
            break
        i -= 1
    k = start
    while k < position:
        word = tokens[k]
        pair = tuple(tokens[k : k + 2])
        if pair in lexicon.neutralisers:
            negated = False
            k += 2
            continue
        if pair in lexicon.negation_phrases or tuple(tokens[k : k + 3]) in lexicon.negation_phrases:
            negated = True
        elif word in lexicon.negation_words:
            # "not only", "no doubt" and a leading answer "no" do not negate what follows.
            following = tokens[k + 1] if k + 1 < len(tokens) else ""
            if not (
                word == "no"
                and (following in lexicon.boundary_punctuation or following in lexicon.non_negating_after_no)
                or following in lexicon.negation_cancellers
            ):
                negated = True
        elif (
            word in lexicon.positive_words
            and negated
            and k > start
            and tokens[k - 1] not in lexicon.negation_words
            # "don't really like" keeps the negation
            and not (k >= 2 and tokens[k - 2] in lexicon.negation_keepers)
        ):
            negated = False
        k += 1
    return negated
