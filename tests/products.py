"""A synthetic product catalogue for the classifier's tests and benchmark: a three-level taxonomy (10 top
categories, 34 below them, 340 leaves at most, named as shops name them) and product rows whose name and
description carry a learnable signal: the leaf's name, and words of the categories above it, among
filler that says nothing about the category.

    python -m tests.products --rows 18000 -o products.csv          # name, description, category
    python -m tests.products --rows 2000 --leaves 60 --sentences 1 2 -o small.csv

The rows are what `data convert --path-column category` reads; the categories are written with
separators and spacing as exports write them (`Home>Kitchen > Kettles`), which convert normalises.
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
from pathlib import Path

# Top category → its subcategories → their leaves (10 each).
TAXONOMY: dict[str, dict[str, list[str]]] = {
    "Electronics": {
        "Audio": ["Headphones", "Earbuds", "Speakers", "Soundbars", "Turntables", "Microphones", "Amplifiers", "Radios", "Hi-fi systems", "Audio cables"],
        "Cameras": ["Compact cameras", "Mirrorless cameras", "Action cameras", "Camera lenses", "Tripods", "Camera bags", "Memory cards", "Flashes", "Instant cameras", "Dash cams"],
        "Computers": ["Laptops", "Desktops", "Monitors", "Keyboards", "Mice", "Webcams", "External drives", "Graphics cards", "Routers", "Docking stations"],
        "Phones": ["Smartphones", "Phone cases", "Screen protectors", "Chargers", "Power banks", "Phone mounts", "Smartwatches", "Fitness trackers", "Charging cables", "Selfie sticks"],
    },
    "Home": {
        "Kitchen": ["Kettles", "Toasters", "Blenders", "Coffee makers", "Frying pans", "Saucepans", "Knife sets", "Cutting boards", "Food storage", "Kitchen scales"],
        "Lighting": ["Ceiling lights", "Floor lamps", "Table lamps", "Wall lights", "LED strips", "Light bulbs", "Night lights", "Pendant lights", "Desk lamps", "Smart bulbs"],
        "Bedding": ["Duvets", "Pillows", "Bed sheets", "Mattress toppers", "Blankets", "Duvet covers", "Pillowcases", "Electric blankets", "Bedspreads", "Mattress protectors"],
        "Furniture": ["Sofas", "Armchairs", "Coffee tables", "Bookcases", "Wardrobes", "Dining chairs", "Bed frames", "Shoe racks", "TV stands", "Bar stools"],
    },
    "Garden": {
        "Garden tools": ["Spades", "Rakes", "Pruning shears", "Hoes", "Trowels", "Wheelbarrows", "Leaf blowers", "Hedge trimmers", "Lawn mowers", "Garden forks"],
        "Plants": ["Seeds", "Bulbs", "Fruit trees", "Herbs", "Succulents", "Roses", "Hedging plants", "Compost", "Plant food", "Plant pots"],
        "Outdoor furniture": ["Garden chairs", "Garden tables", "Sun loungers", "Parasols", "Hammocks", "Garden benches", "Swing seats", "Gazebos", "Cushions", "Fire pits"],
        "Watering": ["Garden hoses", "Sprinklers", "Watering cans", "Hose reels", "Drip irrigation", "Water butts", "Spray guns", "Timers", "Pumps", "Hose connectors"],
    },
    "Sports": {
        "Cycling": ["Road bikes", "Mountain bikes", "Bike helmets", "Bike lights", "Bike locks", "Cycling gloves", "Bike pumps", "Saddles", "Bike computers", "Inner tubes"],
        "Running": ["Running shoes", "Running shorts", "Running jackets", "Running socks", "Hydration vests", "Headlamps", "Running belts", "Compression tights", "Race bibs", "Running caps"],
        "Camping": ["Tents", "Sleeping bags", "Sleeping mats", "Camping stoves", "Lanterns", "Cool boxes", "Camping chairs", "Backpacks", "Water filters", "Camping cookware"],
        "Fitness": ["Dumbbells", "Kettlebells", "Yoga mats", "Resistance bands", "Exercise bikes", "Treadmills", "Pull-up bars", "Foam rollers", "Skipping ropes", "Weight benches"],
    },
    "Toys": {
        "Puzzles": ["Jigsaw puzzles", "3D puzzles", "Brain teasers", "Puzzle mats", "Wooden puzzles", "Floor puzzles", "Puzzle boxes", "Logic games", "Tangrams", "Sliding puzzles"],
        "Dolls": ["Fashion dolls", "Baby dolls", "Doll houses", "Rag dolls", "Doll clothes", "Action figures", "Puppets", "Plush toys", "Doll prams", "Collectible figures"],
        "Building sets": ["Brick sets", "Magnetic tiles", "Wooden blocks", "Marble runs", "Construction kits", "Robot kits", "Train sets", "Model kits", "Stacking toys", "Science kits"],
    },
    "Fashion": {
        "Shoes": ["Sneakers", "Boots", "Sandals", "Loafers", "Heels", "Slippers", "Flip-flops", "Brogues", "Ankle boots", "Espadrilles"],
        "Bags": ["Handbags", "Tote bags", "Wallets", "Suitcases", "Messenger bags", "Clutches", "Bum bags", "Laptop bags", "Duffel bags", "Card holders"],
        "Jackets": ["Rain jackets", "Puffer jackets", "Denim jackets", "Blazers", "Parkas", "Leather jackets", "Fleeces", "Gilets", "Trench coats", "Bomber jackets"],
    },
    "Beauty": {
        "Skincare": ["Moisturisers", "Cleansers", "Serums", "Sunscreens", "Face masks", "Toners", "Eye creams", "Exfoliators", "Lip balms", "Night creams"],
        "Hair care": ["Shampoos", "Conditioners", "Hair dryers", "Straighteners", "Curling irons", "Hair oils", "Hair brushes", "Hair masks", "Dry shampoos", "Hair clippers"],
        "Fragrance": ["Eau de parfum", "Eau de toilette", "Body mists", "Aftershaves", "Perfume oils", "Gift sets", "Scented candles", "Reed diffusers", "Solid perfumes", "Travel sprays"],
    },
    "Automotive": {
        "Car care": ["Car shampoos", "Car waxes", "Microfibre cloths", "Pressure washers", "Tyre shine", "Interior cleaners", "Glass cleaners", "Clay bars", "Polishing pads", "Wash mitts"],
        "Tyres": ["Summer tyres", "Winter tyres", "All-season tyres", "Tyre inflators", "Tyre gauges", "Snow chains", "Wheel trims", "Valve caps", "Puncture kits", "Wheel locks"],
        "Car electronics": ["Car stereos", "Reversing cameras", "Sat navs", "Car chargers", "Radar detectors", "Jump starters", "Car speakers", "Parking sensors", "Bluetooth adapters", "Car inverters"],
    },
    "Office": {
        "Stationery": ["Notebooks", "Fountain pens", "Ballpoint pens", "Pencils", "Highlighters", "Sticky notes", "Staplers", "Envelopes", "Paper clips", "Erasers"],
        "Printers": ["Inkjet printers", "Laser printers", "Ink cartridges", "Toner cartridges", "Label printers", "Photo printers", "Printer paper", "Scanners", "3D printers", "Laminators"],
        "Desks": ["Standing desks", "Office chairs", "Desk organisers", "Monitor arms", "Desk mats", "Filing cabinets", "Footrests", "Cable trays", "Desk drawers", "Lap desks"],
    },
    "Pets": {
        "Dogs": ["Dog beds", "Dog leads", "Dog collars", "Dog food", "Dog toys", "Dog bowls", "Dog coats", "Dog crates", "Dog treats", "Grooming brushes"],
        "Cats": ["Cat litter", "Scratching posts", "Cat beds", "Cat food", "Cat toys", "Cat carriers", "Litter trays", "Cat flaps", "Cat trees", "Cat treats"],
        "Aquariums": ["Fish tanks", "Aquarium filters", "Aquarium heaters", "Fish food", "Aquarium lights", "Gravel", "Air pumps", "Water conditioners", "Aquarium plants", "Fish nets"],
    },
}  # fmt: skip

BRANDS = [
    "Aster",
    "Brindle",
    "Corvo",
    "Dalmore",
    "Elkin",
    "Fennick",
    "Galloway",
    "Harlow",
    "Islay",
    "Juniper",
]
ADJECTIVES = ["compact", "durable", "lightweight", "premium", "classic", "modern", "everyday", "sturdy"]
# Sentences that say nothing about the category: the length of a real description, not its signal.
FILLER = [
    "Ships in recyclable packaging within two working days.",
    "Backed by a two-year manufacturer warranty.",
    "Available in several colours while stocks last.",
    "Designed in Europe and tested for daily use.",
    "Customers rate it highly for value and quality.",
    "Easy to clean and simple to store when not in use.",
    "Free returns within thirty days of delivery.",
    "Made with responsibly sourced materials where possible.",
    "Check the size guide before ordering.",
    "Includes a printed quick-start guide.",
]
# How exports write a path: the separator with other spacing (convert writes `A > B > C`).
SEPARATORS = [" > ", ">", " >", "> ", "  >  "]


def taxonomy(leaves: int = 340) -> list[tuple[str, str, str]]:
    """The first `leaves` leaves as (level 1, level 2, leaf), taken round-robin over the subcategories so
    that any number of them spreads over every category (60 leaves: 34 subcategories, 10 tops)."""
    paths = [
        (top, middle, leaf)
        for top, middles in TAXONOMY.items()
        for middle, names in middles.items()
        for leaf in names
    ]
    if not 1 <= leaves <= len(paths):
        raise ValueError(f"leaves: 1 to {len(paths)}, not {leaves}")
    by_rank = sorted(range(len(paths)), key=lambda index: (index % 10, index // 10))
    return [paths[index] for index in sorted(by_rank[:leaves])]


def product(path: tuple[str, str, str], rng: random.Random, sentences: tuple[int, int]) -> dict[str, str]:
    """One product of the leaf: its name and description name the leaf and the categories above it."""
    top, middle, leaf = path
    item = leaf.lower()
    brand, adjective = rng.choice(BRANDS), rng.choice(ADJECTIVES)
    description = [
        f"A {adjective} choice among {item}, from our {middle.lower()} range.",
        f"Part of the {top.lower()} department.",
        *rng.sample(FILLER, rng.randint(*sentences)),
    ]
    separator = rng.choice(SEPARATORS)
    return {
        "name": f"{brand} {item} {rng.choice('ABCDEFGH')}{rng.randint(10, 99)}",
        "description": " ".join(description),
        "category": separator.join(path),
    }


def products(
    rows: int, leaves: int = 340, seed: int = 0, sentences: tuple[int, int] = (3, 6)
) -> list[dict[str, str]]:
    """`rows` products over the first `leaves` leaves. Leaves are as unequal as shops' are: each leaf's
    weight is drawn once (1 to 8), and every leaf has two products at least, so a split can hold one out."""
    rng = random.Random(seed)
    paths = taxonomy(leaves)
    if rows < 2 * len(paths):
        raise ValueError(f"rows: {rows} is fewer than two per leaf ({2 * len(paths)})")
    weights = [rng.randint(1, 8) for _ in paths]
    chosen = [path for path in paths for _ in range(2)]
    chosen += rng.choices(paths, weights, k=rows - len(chosen))
    rng.shuffle(chosen)
    return [product(path, rng, sentences) for path in chosen]


def write_csv(path: Path, rows: list[dict[str, str]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=["name", "description", "category"])
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=18_000)
    parser.add_argument("--leaves", type=int, default=340)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sentences", type=int, nargs=2, default=(3, 6), metavar=("MIN", "MAX"),
                        help="filler sentences per description")  # fmt: skip
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args(argv)
    write_csv(args.output, products(args.rows, args.leaves, args.seed, tuple(args.sentences)))
    print(f"wrote {args.rows:,} products over {args.leaves} leaves to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
