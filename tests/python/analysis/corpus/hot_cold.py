"""The same pattern twice: once in the run's hottest loop, once on a cold path."""


def hot(items, wanted):
    chosen = list(wanted)
    found = 0
    for item in items:
        if item in chosen:  # expect: membership_in_list
            found += 1
    return found


def cold(items, wanted):
    chosen = list(wanted)
    found = 0
    for item in items:
        if item in chosen:  # expect: membership_in_list
            found += 1
    return found


def main():
    hot(range(60000), range(100))
    cold(range(5), range(100))
