"""Synthetic users whose interests drift at known times: the built-in dataset and the yardstick.

Real logs never say when a user's taste changed, so how well a model tracks interest cannot be
measured on them. Here every user follows a known mixture over category themes that switches
abruptly or blends gradually at recorded change points; events are drawn from that mixture, and the
mixture in force at every event is kept (and saved) as ground truth:

    truth.json               category names, in the order of the interest columns
    truth_interests.parquet  user, timestamp, one weight column per category (rows sum to 1),
                             row k describes row k of events.parquet
    truth_drifts.parquet     user, timestamp, end_timestamp, kind, from_category, to_category
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from driftrec.data.dataset import Dataset
from driftrec.errors import InputError


@dataclass(frozen=True)
class Theme:
    """One category's vocabulary, distinct enough for a sentence-embedding model to tell apart."""

    name: str
    kinds: tuple[str, ...]  # what an item is ("science fiction novel")
    adjectives: tuple[str, ...]
    topics: tuple[str, ...]  # what a description says the item is about
    title_words: tuple[str, ...]
    title_forms: tuple[str, ...]
    search_terms: tuple[str, ...]  # what a user types when looking for the theme
    audiences: tuple[str, ...]


THEMES: tuple[Theme, ...] = (
    Theme(
        "science fiction",
        ("science fiction novel", "space opera saga", "science fiction film"),
        ("gripping", "visionary", "interstellar", "dystopian", "mind-bending"),
        (
            "starships",
            "alien worlds",
            "time travel",
            "galactic empires",
            "rogue androids",
            "first contact",
            "space colonies",
            "artificial intelligence",
        ),
        ("Starship", "Nebula", "Android", "Orbit", "Galaxy", "Quasar", "Wormhole", "Colony"),
        ("Archive", "Chronicles", "Protocol", "Signal", "Frontier", "Legacy"),
        ("sci-fi novels", "space opera books", "science fiction films", "books about alien worlds"),
        (
            "fans of hard science fiction",
            "readers who love space adventures",
            "anyone curious about the far future",
        ),
    ),
    Theme(
        "cooking",
        ("cookbook", "recipe collection", "cooking course"),
        ("hearty", "rustic", "easy", "flavourful", "homestyle"),
        (
            "weeknight dinners",
            "homemade pasta",
            "slow-cooked stews",
            "fresh bread",
            "spice blends",
            "one-pot meals",
            "knife skills",
            "family recipes",
        ),
        ("Kitchen", "Skillet", "Pantry", "Oven", "Saffron", "Spoon", "Casserole", "Recipe"),
        ("Cookbook", "Kitchen Notes", "Recipes", "Feast", "Table", "Suppers"),
        ("cookbooks", "easy dinner recipes", "cooking classes", "baking recipes"),
        ("home cooks", "busy families who cook every night", "anyone learning to cook"),
    ),
    Theme(
        "gardening",
        ("gardening guide", "gardening handbook", "gardening video series"),
        ("practical", "green-fingered", "organic", "seasonal", "thriving"),
        (
            "vegetable beds",
            "composting",
            "pruning roses",
            "seed starting",
            "perennial borders",
            "soil health",
            "houseplants",
            "raised beds",
        ),
        (
            "Seedling",
            "Greenhouse",
            "Compost",
            "Orchard",
            "Blossom",
            "Trellis",
            "Allotment",
            "Meadow",
        ),
        ("Garden Guide", "Handbook", "Almanac", "Growing Year", "Plot", "Journal"),
        (
            "gardening books",
            "vegetable garden tips",
            "how to grow tomatoes",
            "houseplant care guides",
        ),
        ("weekend gardeners", "allotment growers", "anyone with a balcony full of plants"),
    ),
    Theme(
        "jazz music",
        ("jazz album", "live jazz recording", "jazz biography"),
        ("smoky", "swinging", "improvised", "soulful", "late-night"),
        (
            "bebop saxophone solos",
            "swing big bands",
            "piano trios",
            "modal jazz",
            "walking bass lines",
            "trumpet ballads",
            "jam sessions",
            "cool jazz",
        ),
        ("Saxophone", "Bebop", "Blue Note", "Swing", "Trumpet", "Groove", "Ballad", "Midnight"),
        ("Sessions", "Standards", "Live at the Vanguard", "Quartet", "Suite", "Blues"),
        ("jazz albums", "bebop records", "jazz piano music", "saxophone jazz"),
        ("jazz collectors", "late-night listeners", "anyone who loves live improvisation"),
    ),
    Theme(
        "football",
        ("football documentary", "football memoir", "football tactics book"),
        ("thrilling", "legendary", "tactical", "hard-fought", "championship-winning"),
        (
            "penalty shootouts",
            "league title races",
            "legendary strikers",
            "pressing tactics",
            "cup finals",
            "goalkeeping",
            "transfer deadlines",
            "derby matches",
        ),
        ("Striker", "Derby", "Goalkeeper", "Stadium", "Penalty", "Midfield", "Kickoff", "Trophy"),
        ("Season", "Final", "Story", "Glory Years", "Tactics", "Matchday"),
        (
            "football documentaries",
            "soccer tactics books",
            "football club history",
            "books about famous strikers",
        ),
        ("football supporters", "armchair tacticians", "season ticket holders"),
    ),
    Theme(
        "travel",
        ("travel guide", "travel memoir", "travel documentary"),
        ("adventurous", "scenic", "off-the-beaten-path", "budget", "coastal"),
        (
            "backpacking routes",
            "hidden beaches",
            "mountain villages",
            "night trains",
            "street markets",
            "island hopping",
            "road trips",
            "local guesthouses",
        ),
        ("Passport", "Compass", "Voyage", "Atlas", "Journey", "Wanderer", "Harbour", "Horizon"),
        ("Travel Guide", "Diaries", "Routes", "Itinerary", "Road", "Escapes"),
        ("travel guides", "backpacking itineraries", "best places to visit", "road trip ideas"),
        ("backpackers", "weekend travellers", "anyone planning a long trip abroad"),
    ),
    Theme(
        "personal finance",
        ("personal finance book", "investing guide", "money management course"),
        ("frugal", "long-term", "no-nonsense", "debt-free", "money-wise"),
        (
            "index funds",
            "retirement savings",
            "budgeting",
            "paying off debt",
            "compound interest",
            "emergency funds",
            "tax-efficient investing",
            "mortgages",
        ),
        ("Budget", "Dividend", "Savings", "Portfolio", "Pension", "Wealth", "Ledger", "Interest"),
        ("Plan", "Blueprint", "Rules", "Playbook", "Guide to Money", "Money Manual"),
        (
            "personal finance books",
            "investing for beginners",
            "budgeting apps",
            "retirement planning guides",
        ),
        ("first-time investors", "young professionals", "anyone trying to save more"),
    ),
    Theme(
        "fitness",
        ("workout program", "fitness guide", "training video"),
        ("intense", "energising", "high-intensity", "full-body", "muscle-building"),
        (
            "strength training",
            "interval running",
            "kettlebell workouts",
            "core stability",
            "marathon preparation",
            "stretching routines",
            "protein nutrition",
            "home gym exercises",
        ),
        ("Kettlebell", "Sprint", "Muscle", "Endurance", "Cardio", "Squat", "Stamina", "Workout"),
        ("Program", "Challenge", "Method", "Bootcamp", "Fitness Plan", "Training Log"),
        ("workout plans", "strength training programs", "running training guides", "home workouts"),
        ("gym regulars", "runners training for a race", "anyone starting to exercise"),
    ),
    Theme(
        "photography",
        ("photography book", "photography course", "photo essay"),
        ("striking", "luminous", "black-and-white", "candid", "cinematic"),
        (
            "portrait lighting",
            "street photography",
            "long exposures",
            "landscape composition",
            "prime lenses",
            "film cameras",
            "photo editing",
            "golden hour light",
        ),
        ("Aperture", "Shutter", "Lens", "Darkroom", "Exposure", "Frame", "Focus", "Negative"),
        ("Field Guide", "Portfolio", "Masterclass", "Contact Sheets", "Notebook", "Studies"),
        (
            "photography books",
            "camera lens reviews",
            "portrait photography tips",
            "photo editing tutorials",
        ),
        ("amateur photographers", "street photographers", "anyone with a new camera"),
    ),
    Theme(
        "history",
        ("history book", "historical documentary", "history podcast"),
        ("sweeping", "meticulous", "medieval", "ancient", "revolutionary"),
        (
            "Roman emperors",
            "medieval castles",
            "the world wars",
            "ancient Egypt",
            "the industrial revolution",
            "lost empires",
            "great explorers",
            "the cold war",
        ),
        ("Empire", "Crown", "Dynasty", "Castle", "Pharaoh", "Revolution", "Legion", "Monarch"),
        ("A History", "Rise and Fall", "Centuries", "Annals", "Age", "Inheritance"),
        ("history books", "world war documentaries", "ancient Rome books", "medieval history"),
        ("history buffs", "students of the ancient world", "anyone who loves a good biography"),
    ),
    Theme(
        "video games",
        ("video game", "role-playing game", "strategy game"),
        ("open-world", "multiplayer", "pixel-art", "competitive", "co-op"),
        (
            "boss battles",
            "dungeon crawling",
            "skill trees",
            "speedruns",
            "crafting systems",
            "online raids",
            "level design",
            "controller combos",
        ),
        ("Dungeon", "Pixel", "Quest", "Respawn", "Arcade", "Loot", "Boss Rush", "Joystick"),
        ("Online", "Legends", "Arena", "Saga", "Remastered", "Overdrive"),
        ("video games", "multiplayer games", "role-playing games", "indie games"),
        ("gamers", "co-op players", "speedrunners"),
    ),
    Theme(
        "parenting",
        ("parenting book", "parenting guide", "family podcast"),
        ("gentle", "reassuring", "playful", "patient", "nurturing"),
        (
            "toddler tantrums",
            "bedtime routines",
            "newborn sleep",
            "school readiness",
            "sibling rivalry",
            "screen time",
            "potty training",
            "raising teenagers",
        ),
        ("Toddler", "Nursery", "Lullaby", "Crib", "Playground", "Family", "Newborn", "Bedtime"),
        ("Years", "Survival Guide", "Parenting Notes", "Early Days", "Manual", "Little Ones"),
        ("parenting books", "toddler sleep tips", "baby care guides", "books for new parents"),
        ("new parents", "tired mums and dads", "families with young children"),
    ),
    Theme(
        "woodworking",
        ("woodworking manual", "woodworking project book", "carpentry course"),
        ("handcrafted", "sturdy", "hand-planed", "traditional", "solid oak"),
        (
            "dovetail joints",
            "workbench builds",
            "chisels and hand planes",
            "furniture making",
            "wood finishing",
            "lathe turning",
            "timber selection",
            "cabinet making",
        ),
        ("Workbench", "Chisel", "Dovetail", "Timber", "Lathe", "Sawdust", "Joinery", "Oak"),
        ("Workshop", "Projects", "Craft", "Shop Manual", "Build Plans", "Bench Notes"),
        (
            "woodworking plans",
            "carpentry courses",
            "furniture making books",
            "woodturning projects",
        ),
        ("hobby woodworkers", "aspiring furniture makers", "anyone with a garage workshop"),
    ),
    Theme(
        "pet care",
        ("pet care guide", "dog training book", "cat behaviour book"),
        ("furry", "well-behaved", "cuddly", "four-legged", "loyal"),
        (
            "puppy training",
            "cat behaviour",
            "dog nutrition",
            "grooming",
            "vet visits",
            "adopting a rescue dog",
            "aquarium fish",
            "leash walking",
        ),
        ("Puppy", "Whiskers", "Paw", "Kennel", "Tabby", "Collar", "Retriever", "Kitten"),
        ("Care Guide", "Companion", "Training Book", "Tails", "Friends", "Pet Manual"),
        ("dog training books", "cat care tips", "pet supplies", "puppy training guides"),
        ("dog owners", "cat lovers", "families adopting a pet"),
    ),
    Theme(
        "fashion",
        ("fashion magazine", "style guide", "fashion design book"),
        ("stylish", "tailored", "vintage", "elegant", "runway-ready"),
        (
            "capsule wardrobes",
            "streetwear",
            "tailored suits",
            "runway trends",
            "sustainable fabrics",
            "sneaker culture",
            "vintage denim",
            "statement accessories",
        ),
        ("Runway", "Couture", "Silk", "Denim", "Tailor", "Wardrobe", "Velvet", "Atelier"),
        ("Style Guide", "Lookbook", "Edit", "Collection", "Trends", "Studio"),
        ("fashion trends", "style guides", "designer clothing", "streetwear brands"),
        ("fashion lovers", "anyone refreshing their wardrobe", "aspiring designers"),
    ),
    Theme(
        "programming",
        ("programming book", "coding course", "software engineering guide"),
        ("hands-on", "pragmatic", "object-oriented", "scalable", "test-driven"),
        (
            "Python scripting",
            "data structures",
            "web APIs",
            "unit testing",
            "debugging",
            "databases",
            "algorithms",
            "cloud deployment",
        ),
        ("Compiler", "Algorithm", "Python", "Kernel", "Recursion", "Syntax", "Debugger", "Runtime"),
        ("Crash Course", "Internals", "Deep Dive", "Field Manual", "Toolkit", "Primer"),
        ("programming books", "python tutorials", "coding courses", "software engineering books"),
        ("junior developers", "self-taught programmers", "engineers learning a new language"),
    ),
)

SEARCH_TEMPLATES = (
    "looking for {}",
    "best {}",
    "{} recommendations",
    "good {} for beginners",
    "new {}",
    "top rated {}",
)

_DAY = 86_400


@dataclass(frozen=True)
class SyntheticConfig:
    """How many users and items, how their interests drift, and how noisy their events are."""

    n_users: int = 500
    n_items: int = 1000
    n_categories: int = 12  # the first n of THEMES
    events_per_user: tuple[int, int] = (40, 180)  # inclusive range, drawn per user
    max_interests: int = 3  # categories in one mixture: 1..max_interests
    interest_concentration: float = 1.0  # Dirichlet alpha of the mixture weights
    stable_share: float = 0.25  # users whose mixture never changes
    max_drifts: int = 3  # change points of a drifting user: 1..max_drifts (fewer if too short)
    gradual_share: float = 0.5  # chance a change point blends instead of switching
    gradual_window: tuple[int, int] = (10, 40)  # events a gradual blend lasts (inclusive)
    min_segment: int = 10  # events of pure mixture before, between and after change points
    secondary_category_share: float = 0.2  # items that also belong to a second category
    popularity_exponent: float = 1.0  # Zipf exponent of item popularity within a category
    noise: float = 0.05  # chance an event is a uniformly random item
    search_rate: float = 0.03  # chance an event is a text-only search for the dominant interest
    event_mix: tuple[tuple[str, float], ...] = (
        ("view", 0.62),
        ("click", 0.18),
        ("cart", 0.07),
        ("purchase", 0.05),
        ("rating", 0.08),
    )
    start: str = "2024-01-01"  # UTC date of the earliest possible event
    start_spread_days: float = 60.0  # users' first events spread uniformly over this many days
    gap_minutes: float = 4.0  # median gap between events of one session
    session_break: float = 0.3  # chance a gap is a break between sessions
    break_hours: float = 20.0  # median length of a break between sessions
    seed: int = 0

    def __post_init__(self) -> None:
        lo, hi = self.events_per_user
        g_lo, g_hi = self.gradual_window
        checks = {
            "n_users >= 1": self.n_users >= 1,
            f"2 <= n_categories <= {len(THEMES)}": 2 <= self.n_categories <= len(THEMES),
            "n_items >= n_categories": self.n_items >= self.n_categories,
            "1 <= max_interests < n_categories": 1 <= self.max_interests < self.n_categories,
            "max_drifts >= 0": self.max_drifts >= 0,
            "2 <= gradual_window[0] <= gradual_window[1]": 2 <= g_lo <= g_hi,
            "min_segment >= 1": self.min_segment >= 1,
            "events_per_user[0] >= 2 * min_segment + 2": lo >= 2 * self.min_segment + 2,
            "events_per_user[0] <= events_per_user[1]": lo <= hi,
            "interest_concentration > 0": self.interest_concentration > 0,
            "noise + search_rate <= 1": self.noise + self.search_rate <= 1,
            "event_mix weights >= 0 with a positive sum": (
                all(w >= 0 for _, w in self.event_mix) and sum(w for _, w in self.event_mix) > 0
            ),
        }
        for name in (
            "stable_share",
            "gradual_share",
            "secondary_category_share",
            "noise",
            "search_rate",
            "session_break",
        ):
            checks[f"0 <= {name} <= 1"] = 0 <= getattr(self, name) <= 1
        failed = [rule for rule, ok in checks.items() if not ok]
        if failed:
            raise InputError(f"invalid SyntheticConfig: {'; '.join(failed)}")

    def to_dict(self) -> dict[str, Any]:
        """JSON-native form (tuples as lists), so it survives the dataset manifest unchanged."""
        return json.loads(json.dumps(asdict(self)))


@dataclass
class SyntheticData:
    """A generated dataset with the exact interest mixture behind every event."""

    dataset: Dataset
    categories: list[str]
    item_category: np.ndarray  # (n_items,) primary category index per dataset item index
    interests: pd.DataFrame  # user, timestamp, one column per category; row k <-> events row k
    drifts: pd.DataFrame  # user, timestamp, end_timestamp, kind, from_category, to_category

    def true_interest(self, user: str, timestamp: int) -> np.ndarray:
        """The mixture in force at ``timestamp``: that of the user's last event at or before it.

        Before the user's first event the first mixture applies (it was their interest already).
        """
        u = int(self.dataset.user_index([user])[0])
        users = self.dataset.events["user"].to_numpy()
        lo, hi = np.searchsorted(users, [u, u + 1])
        times = self.dataset.events["timestamp"].to_numpy()[lo:hi]
        row = lo + max(0, int(np.searchsorted(times, timestamp, side="right")) - 1)
        return self._weights[row].copy()

    @cached_property
    def _weights(self) -> np.ndarray:
        return self.interests[self.categories].to_numpy(np.float64)

    def save(self, path: str | Path) -> Path:
        """Write the dataset directory plus the truth files next to it."""
        path = self.dataset.save(path)
        self.interests.to_parquet(path / "truth_interests.parquet", index=False)
        self.drifts.to_parquet(path / "truth_drifts.parquet", index=False)
        (path / "truth.json").write_text(json.dumps({"categories": self.categories}, indent=2))
        return path

    @classmethod
    def load(cls, path: str | Path) -> SyntheticData:
        """Read what `save` wrote; an item's primary category is the first in its catalog list."""
        path = Path(path)
        dataset = Dataset.load(path)
        categories = list(json.loads((path / "truth.json").read_text())["categories"])
        index = {name: i for i, name in enumerate(categories)}
        return cls(
            dataset=dataset,
            categories=categories,
            item_category=np.array([index[c[0]] for c in dataset.items["categories"]], np.int64),
            interests=pd.read_parquet(path / "truth_interests.parquet"),
            drifts=pd.read_parquet(path / "truth_drifts.parquet"),
        )


def generate(config: SyntheticConfig | None = None) -> SyntheticData:
    """Draw a catalog, users' drifting interests and their events, all fixed by ``config.seed``."""
    config = config or SyntheticConfig()
    catalog_rng, user_rng, event_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(config.seed).spawn(3)
    )
    themes = THEMES[: config.n_categories]
    item_ids = _ids("i", config.n_items)
    primary, items = _catalog(item_ids, themes, config, catalog_rng)
    plan = _interest_plan(config, user_rng)
    user_ids = _ids("u", config.n_users)
    events, mixture = _events(plan, primary, item_ids, user_ids, themes, config, event_rng)

    categories = [t.name for t in themes]
    dataset = Dataset.from_frames(
        events,
        items,
        name="synthetic",
        info={"synthetic": config.to_dict(), "has_timestamps": True},
    )
    item_category = np.empty(dataset.n_items, np.int64)
    item_category[dataset.item_index(item_ids)] = primary

    # Put the truth in the dataset's event order (by user index, then time) so rows line up.
    user_pos = dataset.user_index(user_ids)[plan.event_user]
    order = np.lexsort((events["timestamp"].to_numpy(), user_pos))
    interests = pd.DataFrame(
        {
            "user": np.asarray(user_ids, object)[plan.event_user[order]],
            "timestamp": events["timestamp"].to_numpy(np.int64)[order],
            **{name: mixture[order, c] for c, name in enumerate(categories)},
        }
    )
    times = events["timestamp"].to_numpy(np.int64)
    first = plan.offsets[plan.drift_user] + plan.drift_start
    drifts = pd.DataFrame(
        {
            "user": np.asarray(user_ids, object)[plan.drift_user],
            "timestamp": times[first],
            "end_timestamp": times[first + plan.drift_width - 1],
            "kind": np.where(plan.drift_width > 1, "gradual", "abrupt").astype(object),
            "from_category": np.asarray(categories, object)[plan.drift_from],
            "to_category": np.asarray(categories, object)[plan.drift_to],
        }
    )
    return SyntheticData(dataset, categories, item_category, interests, drifts)


# ---------------------------------------------------------------------- catalog


def _ids(prefix: str, n: int) -> list[str]:
    """Zero-padded ids, so string order is numeric order."""
    width = max(4, len(str(n)))
    return [f"{prefix}{i:0{width}d}" for i in range(1, n + 1)]


def _pick(rng: np.random.Generator, sizes: np.ndarray) -> np.ndarray:
    """One uniform index per row into a row-specific number of choices."""
    return (rng.random(len(sizes)) * sizes).astype(np.int64)


def _catalog(
    item_ids: list[str],
    themes: tuple[Theme, ...],
    config: SyntheticConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame]:
    """Items with a primary theme (balanced), some a second one, and a title and description."""
    n, n_cat = len(item_ids), len(themes)
    primary = rng.permutation(np.arange(n) % n_cat)
    has_second = rng.random(n) < config.secondary_category_share
    second = (primary + rng.integers(1, n_cat, n)) % n_cat

    def sizes(field: str, cats: np.ndarray = primary) -> np.ndarray:
        return np.array([len(getattr(t, field)) for t in themes])[cats]

    pattern = rng.integers(0, 3, n)
    word, form = _pick(rng, sizes("title_words")), _pick(rng, sizes("title_forms"))
    title_adj, adj = _pick(rng, sizes("adjectives")), _pick(rng, sizes("adjectives"))
    kind, audience = _pick(rng, sizes("kinds")), _pick(rng, sizes("audiences"))
    with_audience = rng.random(n) < 0.5
    # Three distinct topics of the primary theme, two of the second: rank random keys per row.
    keys = rng.random((n, max(len(t.topics) for t in themes)))
    keys[np.arange(keys.shape[1]) >= sizes("topics")[:, None]] = 2.0
    topics = np.argsort(keys, axis=1)[:, :3]
    second_keys = rng.random((n, keys.shape[1]))
    second_keys[np.arange(keys.shape[1]) >= sizes("topics", second)[:, None]] = 2.0
    second_topics = np.argsort(second_keys, axis=1)[:, :2]

    titles, texts, categories = [], [], []
    for i in range(n):
        t = themes[primary[i]]
        w, f = t.title_words[word[i]], t.title_forms[form[i]]
        titles.append(
            (f"The {w} {f}", f"{w} {f}", f"The {_capitalized(t.adjectives[title_adj[i]])} {w}")[
                pattern[i]
            ]
        )
        a, b, c = (t.topics[j] for j in topics[i])
        text = f"{_article(t.adjectives[adj[i]])} {t.adjectives[adj[i]]} {t.kinds[kind[i]]} about "
        text += f"{a}, {b} and {c}."
        if has_second[i]:
            s = themes[second[i]]
            x, y = (s.topics[j] for j in second_topics[i])
            text += f" It also covers {x} and {y}."
            categories.append([t.name, s.name])
        else:
            if with_audience[i]:
                text += f" Ideal for {t.audiences[audience[i]]}."
            categories.append([t.name])
        texts.append(text[0].upper() + text[1:])
    items = pd.DataFrame({"item": item_ids, "title": titles, "text": texts})
    items["categories"] = pd.Series(categories, dtype=object)
    return primary.astype(np.int64), items


def _article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _capitalized(phrase: str) -> str:
    return " ".join(w[0].upper() + w[1:] for w in phrase.split())


# ---------------------------------------------------------------------- interests


@dataclass(frozen=True)
class _Plan:
    """Every user's mixtures and change points; per-event arrays index users in generation order."""

    lengths: np.ndarray  # (U,) events per user
    offsets: np.ndarray  # (U,) first event of each user in the generated event order
    regimes: np.ndarray  # (U, max_drifts + 1, C) mixture before the first, after each change
    starts: np.ndarray  # (U, >= max_drifts) first event a change affects (past the end if unused)
    widths: np.ndarray  # (U, >= max_drifts) events the blend takes to complete (1 = abrupt)
    event_user: np.ndarray  # (N,) user of each event
    event_pos: np.ndarray  # (N,) position of each event in its user's sequence
    drift_user: np.ndarray  # (D,) one row per realised change point, in user then time order
    drift_start: np.ndarray
    drift_width: np.ndarray
    drift_from: np.ndarray  # dominant category before
    drift_to: np.ndarray  # dominant category after


def _interest_plan(config: SyntheticConfig, rng: np.random.Generator) -> _Plan:
    """Draw per-user mixtures and change points; the per-event work is left to numpy."""
    n_users, n_cat, max_drifts = config.n_users, config.n_categories, config.max_drifts
    m, (g_lo, g_hi) = config.min_segment, config.gradual_window
    lengths = rng.integers(config.events_per_user[0], config.events_per_user[1] + 1, n_users)
    stable = rng.random(n_users) < config.stable_share
    n_drifts = np.where(stable | (max_drifts == 0), 0, 1 + _pick(rng, np.full(n_users, max_drifts)))
    regimes = np.zeros((n_users, max_drifts + 1, n_cat))
    # At least one column, so that users without change points still find a start past their end.
    starts = np.full((n_users, max(1, max_drifts)), np.iinfo(np.int32).max, np.int64)
    widths = np.ones((n_users, max(1, max_drifts)), np.int64)
    all_cats = np.arange(n_cat)
    rows: list[tuple[int, int, int, int, int]] = []
    for u in range(n_users):
        k, length = int(n_drifts[u]), int(lengths[u])
        width = np.where(rng.random(k) < config.gradual_share, rng.integers(g_lo, g_hi + 1, k), 1)
        while k > 1 and (k + 1) * m + width[:k].sum() > length:
            k -= 1  # too short for that many change points: keep the earlier ones
        width = width[:k]
        if k == 1:
            width[0] = min(width[0], length - 2 * m)
        free = length - (k + 1) * m - int(width.sum())
        extra = np.diff(np.concatenate(([0], np.sort(rng.integers(0, free + 1, k)), [free])))
        start = m + extra[0]
        cats = rng.choice(n_cat, rng.integers(1, config.max_interests + 1), replace=False)
        for r in range(k + 1):
            if r:
                # A drift moves the user to a main interest they did not have and drops the old one.
                dominant = rng.choice(all_cats[~np.isin(all_cats, cats)])
                others = all_cats[(all_cats != cats[0]) & (all_cats != dominant)]
                n_int = rng.integers(1, config.max_interests + 1)
                new = np.concatenate(([dominant], rng.choice(others, n_int - 1, replace=False)))
                rows.append((u, int(start), int(width[r - 1]), int(cats[0]), int(dominant)))
                starts[u, r - 1], widths[u, r - 1] = start, width[r - 1]
                start += width[r - 1] + m + extra[r]
                cats = new
            weights = rng.dirichlet(np.full(len(cats), config.interest_concentration))
            regimes[u, r, cats] = np.sort(weights)[::-1]  # cats[0] is the dominant interest
    offsets = np.zeros(n_users, np.int64)
    np.cumsum(lengths[:-1], out=offsets[1:])
    event_user = np.repeat(np.arange(n_users), lengths)
    drift = np.array(rows, np.int64).reshape(-1, 5)
    return _Plan(
        lengths=lengths,
        offsets=offsets,
        regimes=regimes,
        starts=starts,
        widths=widths,
        event_user=event_user,
        event_pos=np.arange(len(event_user)) - offsets[event_user],
        drift_user=drift[:, 0],
        drift_start=drift[:, 1],
        drift_width=drift[:, 2],
        drift_from=drift[:, 3],
        drift_to=drift[:, 4],
    )


def _mixtures(plan: _Plan) -> np.ndarray:
    """(N, C) mixture at every event: each change blends linearly over its width (1 = abrupt).

    Blend windows never overlap, so an event after ``c`` change starts mixes regimes c - 1 and c.
    """
    user, pos = plan.event_user, plan.event_pos
    started = (pos[:, None] >= plan.starts[user]).sum(axis=1)
    k = np.maximum(started - 1, 0)
    t = np.clip((pos - plan.starts[user, k] + 1) / plan.widths[user, k], 0.0, 1.0)
    t = np.where(started > 0, t, 0.0)[:, None]
    return (1.0 - t) * plan.regimes[user, k] + t * plan.regimes[user, started]


# ---------------------------------------------------------------------- events


def _events(
    plan: _Plan,
    primary: np.ndarray,
    item_ids: list[str],
    user_ids: list[str],
    themes: tuple[Theme, ...],
    config: SyntheticConfig,
    rng: np.random.Generator,
) -> tuple[pd.DataFrame, np.ndarray]:
    """Raw events (external ids, generation order) and the (N, C) mixture behind each one."""
    mixture = _mixtures(plan)
    n, n_cat = mixture.shape

    # Category from the mixture by inverse CDF; u in (0, 1] never lands on a zero-weight category.
    cdf = np.cumsum(mixture, axis=1)
    u = 1.0 - rng.random(n)
    category = (cdf < (u * cdf[:, -1])[:, None]).sum(axis=1)

    # Item within the category by Zipf popularity over a random ranking of its items: one global
    # table where category c occupies (c, c + 1], searched at c + u.
    ranked, table = [], []
    for c in range(n_cat):
        members = rng.permutation(np.flatnonzero(primary == c))
        zipf = np.cumsum(1.0 / np.arange(1, len(members) + 1) ** config.popularity_exponent)
        zipf /= zipf[-1]
        zipf[-1] = 1.0
        ranked.append(members)
        table.append(c + zipf)
    slot = np.searchsorted(np.concatenate(table), category + (1.0 - rng.random(n)))
    item = np.concatenate(ranked)[slot]

    kind = rng.random(n)
    is_search = kind < config.search_rate
    is_noise = ~is_search & (kind < config.search_rate + config.noise)
    item = np.where(is_noise, rng.integers(0, len(item_ids), n), item)

    names = [name for name, _ in config.event_mix]
    p = np.array([w for _, w in config.event_mix], np.float64)
    event = np.asarray(names, object)[rng.choice(len(names), n, p=p / p.sum())]
    event[is_search] = "search"

    # Ratings rise with the weight of the item's category relative to the dominant interest.
    relative = mixture[np.arange(n), primary[item]] / mixture.max(axis=1)
    stars = np.clip(np.rint(1.5 + 3.5 * relative + rng.normal(0.0, 0.75, n)), 1, 5)
    value = np.where(event == "rating", stars, 1.0)

    queries = np.array(
        [[tpl.format(term) for tpl in SEARCH_TEMPLATES for term in t.search_terms] for t in themes],
        dtype=object,
    )
    dominant = mixture.argmax(axis=1)
    text = np.full(n, None, dtype=object)
    pick = _pick(rng, np.full(int(is_search.sum()), queries.shape[1]))
    text[is_search] = queries[dominant[is_search], pick]

    timestamps = _timestamps(plan, config, rng)
    items = np.asarray(item_ids, object)[item]
    items[is_search] = None
    events = pd.DataFrame(
        {
            "user": np.asarray(user_ids, object)[plan.event_user],
            "item": items,
            "timestamp": timestamps,
            "event": event,
            "value": value,
            "text": text,
        }
    )
    return events, mixture


def _timestamps(plan: _Plan, config: SyntheticConfig, rng: np.random.Generator) -> np.ndarray:
    """Strictly increasing seconds per user: short gaps within sessions, long ones between."""
    n = len(plan.event_user)
    origin = int(pd.Timestamp(config.start, tz="UTC").timestamp())
    first = origin + (rng.random(len(plan.lengths)) * config.start_spread_days * _DAY).astype(
        np.int64
    )
    short = rng.lognormal(np.log(config.gap_minutes * 60.0), 1.0, n)
    long = rng.lognormal(np.log(config.break_hours * 3600.0), 1.0, n)
    gaps = np.maximum(1, np.rint(np.where(rng.random(n) < config.session_break, long, short)))
    gaps = gaps.astype(np.int64)
    gaps[plan.offsets] = 0
    elapsed = np.cumsum(gaps)
    return elapsed - np.repeat(elapsed[plan.offsets] - first, plan.lengths)
