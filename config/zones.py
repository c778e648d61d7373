"""Availability-zone letters per region, so a zone that does not exist is refused offline (no EC2 lookup at synth).

Zone names (``eu-west-1a``) are mapped per account, but the set of letters a region offers is the same for every
account. Source: the regions' published zone lists (AWS "Regions and Zones" documentation), 2026. A region not
listed here accepts a-f; ``doctor --preflight`` checks the zones against the live account.
"""

from __future__ import annotations

ZONE_LETTERS: dict[str, str] = {
    "us-east-1": "abcdef",
    "us-east-2": "abc",
    "us-west-1": "abc",
    "us-west-2": "abcd",
    "ca-central-1": "abd",
    "ca-west-1": "abc",
    "sa-east-1": "abc",
    "mx-central-1": "abc",
    "eu-west-1": "abc",
    "eu-west-2": "abc",
    "eu-west-3": "abc",
    "eu-central-1": "abc",
    "eu-central-2": "abc",
    "eu-north-1": "abc",
    "eu-south-1": "abc",
    "eu-south-2": "abc",
    "il-central-1": "abc",
    "me-south-1": "abc",
    "me-central-1": "abc",
    "af-south-1": "abc",
    "ap-east-1": "abc",
    "ap-south-1": "abc",
    "ap-south-2": "abc",
    "ap-northeast-1": "acd",
    "ap-northeast-2": "abcd",
    "ap-northeast-3": "abc",
    "ap-southeast-1": "abc",
    "ap-southeast-2": "abc",
    "ap-southeast-3": "abc",
    "ap-southeast-4": "abc",
    "ap-southeast-5": "abc",
    "ap-southeast-7": "abc",
    "cn-north-1": "abd",
    "cn-northwest-1": "abc",
}
DEFAULT_LETTERS = "abcdef"


def zone_letters(region: str) -> str:
    return ZONE_LETTERS.get(region, DEFAULT_LETTERS)
