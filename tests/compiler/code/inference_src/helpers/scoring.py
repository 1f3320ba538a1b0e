from __future__ import annotations


def score(data, model):
    return [len(str(row)) for row in data]
