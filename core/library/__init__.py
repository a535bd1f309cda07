"""The library: every transcribed recording of an owner, listed, searched and asked across.

`store.Library` keeps it in one SQLite file in the cache folder (an FTS5 index over the
transcripts' sentences, with each sentence's recording, start and speaker), next to the cached
transcripts it is built from: `sync` keeps it in step as transcripts are made, renamed or removed
and rebuilds it from them. What a recording says is held once; who holds it is a membership
row per owner (`LOCAL` on a single-user machine; a visitor's or a signed-in user's scope on a
shared server), and every listing, search and answer goes through the owner's memberships.
"""

LOCAL = "local"  # the owner of everything this machine transcribed, for a single-user app and the CLI
USER = "user:"  # a signed-in user's owner id: this, then their name


def keeps(owner: str) -> bool:
    """Whether the owner's library keeps its transcripts out of the cache's cap: the local
    library and a signed-in user's do; an anonymous visitor's on a shared server lives with the
    cache (a recording evicted from it leaves their library)."""
    return owner == LOCAL or owner.startswith(USER)
