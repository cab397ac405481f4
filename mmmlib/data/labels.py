"""Display names for channels: "fb_ads", "FB Ads", "facebook_S" → "Facebook Ads".

The column name stays the channel's ``name`` everywhere; only what people read changes.
Users extend the mapping with ``label_aliases`` in the config (alias → label) or pin a
label per column with ``channel_labels``.
"""

from __future__ import annotations

import re

# alias (lower case, words separated by one space) → display label
DEFAULT_ALIASES: dict[str, str] = {
    "facebook": "Facebook Ads",
    "facebook ads": "Facebook Ads",
    "fb": "Facebook Ads",
    "fb ads": "Facebook Ads",
    "meta": "Meta Ads",
    "meta ads": "Meta Ads",
    "instagram": "Instagram Ads",
    "adwords": "Google Ads",
    "google": "Google Ads",
    "google ads": "Google Ads",
    "gads": "Google Ads",
    "sem": "Paid Search",
    "paid search": "Paid Search",
    "search": "Search",
    "bing": "Microsoft Ads",
    "microsoft ads": "Microsoft Ads",
    "youtube": "YouTube",
    "yt": "YouTube",
    "tiktok": "TikTok",
    "linkedin": "LinkedIn",
    "twitter": "X (Twitter)",
    "snapchat": "Snapchat",
    "pinterest": "Pinterest",
    "tv": "TV",
    "linear tv": "TV",
    "ctv": "Connected TV",
    "connected tv": "Connected TV",
    "ott": "Connected TV",
    "ooh": "Out of Home",
    "dooh": "Digital Out of Home",
    "out of home": "Out of Home",
    "print": "Print",
    "radio": "Radio",
    "podcast": "Podcast",
    "display": "Display",
    "programmatic": "Programmatic",
    "social": "Social",
    "paid social": "Paid Social",
    "email": "Email",
    "affiliate": "Affiliate",
    "affiliates": "Affiliate",
    "influencer": "Influencer",
    "influencers": "Influencer",
    "direct mail": "Direct Mail",
    "video": "Video",
    "online video": "Online Video",
}

# words that describe the measure, not the channel ("tv_spend" is the TV channel)
MEASURE_WORDS = {
    "spend",
    "spends",
    "cost",
    "costs",
    "investment",
    "budget",
    "media",
    "s",
    "usd",
    "eur",
    "gbp",
    "amount",
}
_ACRONYMS = {"tv", "ooh", "dooh", "ctv", "ott", "sem", "seo", "crm", "sms", "ppc", "cpc", "cpm", "dm"}


def words(name: str) -> list[str]:
    """Lower-case words of a column name: ``fbAds_S`` → ``["fb", "ads", "s"]``; ``Channel0`` → ``["channel", "0"]``."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    spaced = re.sub(r"(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])", " ", spaced)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced.lower()) if w]


def channel_label(name: str, aliases: dict[str, str] | None = None, overrides: dict[str, str] | None = None) -> str:
    """The display label of channel column ``name``."""
    if overrides and name in overrides:
        return overrides[name]
    table = {**DEFAULT_ALIASES, **{_key(k): v for k, v in (aliases or {}).items()}}
    ws = words(name)
    core = [w for w in ws if w not in MEASURE_WORDS] or ws
    for candidate in (" ".join(ws), " ".join(core)):
        if candidate in table:
            return table[candidate]
    joined = "".join(core)
    if joined in table:
        return table[joined]
    # "fb ads extra" → try the longest alias prefix
    for n in range(len(core) - 1, 0, -1):
        head = " ".join(core[:n])
        if head in table:
            rest = _join_titled([w for w in core[n:] if w != "ads"])
            return f"{table[head]} {rest}".strip()
    return _join_titled(core) or name


def _join_titled(ws: list[str]) -> str:
    """Title-case words, gluing a lone letter to the number after it ("x 1" → "X1")."""
    out: list[str] = []
    for w in ws:
        if w.isdigit() and out and len(out[-1]) == 1:
            out[-1] += w
        else:
            out.append(_title(w))
    return " ".join(out)


def _key(alias: str) -> str:
    return " ".join(words(alias))


def _title(word: str) -> str:
    return word.upper() if word in _ACRONYMS else word.capitalize()
