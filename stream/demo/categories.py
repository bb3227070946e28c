"""What the generated demo shop sells: categories, complement rules and ad campaigns.

Data, not logic (``stream.demo.catalog`` turns it into products). Each leaf category says
how to write its products (nouns, brands, price range, variants, a one-sentence blurb and
features, so that descriptions differ by category and BERT similarity means something);
each complement rule says which category's products get a dedicated complement in which
other category (phone → a case made for that phone); campaigns are written to match
categories, so that shoppers of those categories become ad targets.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CAMPAIGNS", "CATEGORIES", "COMPLEMENTS", "CategorySpec", "ComplementRule"]


@dataclass(frozen=True, kw_only=True)
class CategorySpec:
    """How to write the products of one leaf category."""

    path: str
    noun: str
    brands: tuple[str, ...]
    price: tuple[float, float]
    variants: tuple[str, ...]
    blurb: str  # what the product is, in one sentence; {noun} and {brand} are filled in
    features: tuple[str, ...]
    weight: float = 1.0  # how many users take an interest in it, relatively


@dataclass(frozen=True, kw_only=True)
class ComplementRule:
    """Buyers of a product in ``anchor`` also buy a product of ``complement`` made for it."""

    anchor: str
    complement: str
    noun: str  # the dedicated complement's title: "<noun> for <anchor title>"


def _spec(
    path: str,
    noun: str,
    brands: str,
    price: tuple[float, float],
    variants: str,
    blurb: str,
    features: str,
    weight: float = 1.0,
) -> CategorySpec:
    return CategorySpec(
        path=path,
        noun=noun,
        brands=tuple(brands.split(",")),
        price=price,
        variants=tuple(variants.split(",")),
        blurb=blurb,
        features=tuple(features.split(";")),
        weight=weight,
    )


CATEGORIES: tuple[CategorySpec, ...] = (
    _spec(
        "Electronics>Phones",
        "smartphone",
        "Nova,Lumen,Orbit,Zephyr,Kestrel",
        (199, 1199),
        "128 GB midnight black,256 GB ocean blue,128 GB silver,512 GB graphite,64 GB coral",
        "An unlocked {brand} {noun} with a bright OLED display and a triple camera.",
        "5G and dual SIM;all-day battery with fast charging;water resistant to IP68;"
        "night mode photography;6.5 inch 120 Hz screen",
        2.0,
    ),
    _spec(
        "Electronics>Phone Accessories>Cases",
        "phone case",
        "Armorline,Slimfit,Nova,Gripster",
        (9, 49),
        "clear,matte black,rugged olive,leather brown",
        "A protective {noun} by {brand} that keeps your phone safe from drops and scratches.",
        "shockproof corners;raised camera lip;wireless charging compatible;anti-yellowing finish",
    ),
    _spec(
        "Electronics>Phone Accessories>Chargers",
        "phone charger",
        "Voltix,Nova,Ampere,Chargeon",
        (12, 59),
        "20 W USB-C,30 W USB-C,45 W dual port,65 W GaN",
        "A fast {noun} from {brand} that fills a phone battery in under an hour.",
        "USB power delivery;foldable plug;overheat protection;includes braided cable",
    ),
    _spec(
        "Electronics>Cameras",
        "digital camera",
        "Optica,Lumix-Pro,Shutterly,Fotona",
        (299, 2499),
        "24 MP body only,24 MP with 18-55 mm lens,33 MP full frame,20 MP compact",
        "A {brand} {noun} for sharp photos and 4K video, with fast autofocus.",
        "interchangeable lenses;in-body image stabilisation;weather sealed body;flip-out touch screen",
        1.5,
    ),
    _spec(
        "Electronics>Camera Accessories>Memory Cards",
        "SD memory card",
        "Storix,FlashPeak,Optica",
        (8, 89),
        "64 GB V30,128 GB V60,256 GB V90,32 GB UHS-I",
        "A fast {noun} by {brand} for burst photos and 4K video recording.",
        "read speeds up to 300 MB/s;water and shock proof;lifetime warranty;for cameras and drones",
    ),
    _spec(
        "Electronics>Camera Accessories>Bags",
        "camera bag",
        "Trekpack,Optica,Urbanlens",
        (25, 149),
        "sling,backpack 20 L,shoulder,roll-top",
        "A padded {noun} by {brand} with room for a body, two lenses and accessories.",
        "customisable dividers;rain cover;quick side access;laptop sleeve",
    ),
    _spec(
        "Electronics>Laptops",
        "laptop",
        "Quanta,Aerobook,Corely,Lumen",
        (499, 2799),
        "14 inch 16 GB 512 GB,15.6 inch 8 GB 256 GB,13 inch 32 GB 1 TB,16 inch 16 GB 1 TB",
        "A thin and light {brand} {noun} for work, study and streaming.",
        "all-day battery;backlit keyboard;full HD webcam;fingerprint reader",
        1.5,
    ),
    _spec(
        "Electronics>Computer Accessories>Laptop Sleeves",
        "laptop sleeve",
        "Slimfit,Urbanlens,Feltworks",
        (15, 69),
        "13 inch grey felt,14 inch navy,15.6 inch black,16 inch sand",
        "A slim {noun} by {brand} that protects your laptop in a backpack.",
        "water repellent;soft fleece lining;front pocket for a charger;magnetic closure",
    ),
    _spec(
        "Electronics>Computer Accessories>Mice",
        "wireless mouse",
        "Clickr,Quanta,Ergon",
        (14, 99),
        "silent,ergonomic vertical,travel,gaming 16000 DPI",
        "A comfortable {noun} from {brand} with a long-lasting battery.",
        "Bluetooth and USB receiver;silent clicks;rechargeable via USB-C;works on glass",
    ),
    _spec(
        "Electronics>Printers",
        "printer",
        "Inkwell,Printara,Quanta",
        (79, 499),
        "all-in-one inkjet,colour laser,photo inkjet,mono laser",
        "A {brand} {noun} for home and office that prints, scans and copies.",
        "wireless printing from phones;automatic double-sided printing;50-sheet feeder;quiet mode",
        1.0,
    ),
    _spec(
        "Electronics>Printer Supplies>Ink Cartridges",
        "ink cartridge",
        "Inkwell,Printara,Refilla",
        (12, 79),
        "black XL,tri-colour,multipack,photo black",
        "An original {noun} from {brand} for crisp text and vivid colours.",
        "high page yield;smudge resistant;easy snap-in installation;recyclable",
    ),
    _spec(
        "Electronics>Headphones",
        "wireless headphones",
        "Sonora,Bassline,Lumen",
        (29, 399),
        "over-ear,in-ear,on-ear,sport",
        "{brand} {noun} with rich sound and active noise cancelling.",
        "30 hour battery;multipoint Bluetooth;transparency mode;foldable design",
        1.5,
    ),
    _spec(
        "Gaming>Consoles",
        "game console",
        "Playbox,Nexus,Arcadia",
        (249, 599),
        "1 TB,digital edition,handheld,bundle with two games",
        "A {brand} {noun} for 4K gaming at up to 120 frames per second.",
        "ultra fast SSD;ray tracing;backwards compatible;online multiplayer",
        1.2,
    ),
    _spec(
        "Gaming>Controllers",
        "game controller",
        "Playbox,Nexus,Gripster",
        (29, 89),
        "wireless black,wireless white,pro edition,charging bundle",
        "A wireless {noun} by {brand} with precise sticks and haptic feedback.",
        "rechargeable battery;adaptive triggers;remappable buttons;3.5 mm audio jack",
    ),
    _spec(
        "Home>Kitchen>Coffee Machines",
        "espresso machine",
        "Baristo,Crema,Moka Bella",
        (99, 899),
        "bean to cup,manual lever,capsule,dual boiler",
        "A {brand} {noun} that pulls cafe-quality espresso and steams milk at home.",
        "15 bar pump;built-in grinder;milk frother;programmable cup sizes",
        1.2,
    ),
    _spec(
        "Grocery>Coffee>Coffee Beans",
        "coffee beans",
        "Roastery Nine,Crema,Highland",
        (7, 29),
        "1 kg espresso roast,500 g medium roast,1 kg decaf,250 g single origin",
        "Whole {noun} from {brand}, freshly roasted with notes of chocolate and caramel.",
        "100% arabica;fair trade;roasted in small batches;resealable valve bag",
    ),
    _spec(
        "Home>Kitchen>Cookware",
        "frying pan",
        "Ferro,Castiron Co,Culina",
        (19, 149),
        "24 cm non-stick,28 cm cast iron,20 cm stainless,30 cm wok",
        "A durable {noun} by {brand} for searing, frying and sauteing.",
        "induction compatible;oven safe to 250 C;PFOA free coating;stay-cool handle",
    ),
    _spec(
        "Sports>Running>Running Shoes",
        "running shoes",
        "Stride,Aerofoot,Pacer",
        (59, 219),
        "road neutral,trail,stability,racing carbon plate",
        "Cushioned {brand} {noun} for daily training and long runs.",
        "breathable mesh upper;responsive foam;reflective details;grippy rubber outsole",
        1.5,
    ),
    _spec(
        "Sports>Running>Socks",
        "running socks",
        "Stride,Dryfeet,Pacer",
        (6, 24),
        "3 pack low cut,crew merino,compression,ankle 5 pack",
        "Blister-free {noun} by {brand} with cushioned heels.",
        "moisture wicking;seamless toe;arch support;anti-odour yarn",
    ),
    _spec(
        "Sports>Yoga>Mats",
        "yoga mat",
        "Zenflow,Aerofoot,Lotus",
        (15, 99),
        "6 mm,4 mm travel,cork,extra long",
        "A non-slip {noun} by {brand} for yoga, pilates and stretching.",
        "eco-friendly TPE;alignment lines;carry strap;easy to clean",
    ),
    _spec(
        "Beauty>Hair>Shampoo",
        "shampoo",
        "Silkara,Herbal Grove,Volumia",
        (4, 24),
        "for dry hair,anti-dandruff,for coloured hair,volumising",
        "A gentle {brand} {noun} that cleanses and adds shine.",
        "sulphate free;with argan oil;dermatologically tested;vegan formula",
        1.2,
    ),
    _spec(
        "Beauty>Hair>Conditioner",
        "conditioner",
        "Silkara,Herbal Grove,Volumia",
        (4, 24),
        "for dry hair,detangling,for coloured hair,lightweight",
        "A nourishing {brand} {noun} that leaves hair soft and easy to comb.",
        "sulphate free;with shea butter;silicone free;vegan formula",
    ),
    _spec(
        "Grocery>Pasta>Dried Pasta",
        "dried pasta",
        "Nonna Rosa,Campo,Trafila",
        (1, 6),
        "spaghetti 500 g,penne rigate 500 g,fusilli 1 kg,linguine 500 g",
        "Bronze-cut {noun} by {brand} made from durum wheat semolina.",
        "slow dried;cooks in 9 minutes;rough texture holds sauce;product of Italy",
        1.2,
    ),
    _spec(
        "Grocery>Pasta>Sauces",
        "pasta sauce",
        "Nonna Rosa,Campo,Orto",
        (2, 8),
        "tomato basil 400 g,arrabbiata 400 g,pesto genovese 190 g,bolognese 400 g",
        "A ready-to-heat {noun} by {brand} made with sun-ripened tomatoes.",
        "no added sugar;extra virgin olive oil;vegetarian;glass jar",
    ),
    _spec(
        "Pets>Dogs>Dog Food",
        "dry dog food",
        "Pawsome,Canis,Wildbite",
        (12, 79),
        "adult chicken 12 kg,puppy 3 kg,senior lamb 6 kg,grain free salmon 10 kg",
        "Complete {noun} by {brand} with real meat as the first ingredient.",
        "added vitamins and minerals;supports healthy digestion;no artificial colours;made in Europe",
    ),
    _spec(
        "Pets>Dogs>Toys",
        "dog toy",
        "Pawsome,Chewmaster,Fetchit",
        (4, 29),
        "rope tug,squeaky ball,chew bone,puzzle feeder",
        "A durable {noun} by {brand} for play and chewing.",
        "non-toxic rubber;floats in water;dishwasher safe;for medium and large dogs",
    ),
    _spec(
        "Books>Fiction",
        "novel",
        "Harbor Press,Quill,Northlight",
        (8, 29),
        "paperback,hardcover,large print,box set",
        "A gripping {noun} published by {brand}, a bestseller about family and secrets.",
        "book club edition;author interview included;over 400 pages;award shortlisted",
    ),
    _spec(
        "Toys>Building Sets",
        "building set",
        "Brickly,Constructo,Blockhaus",
        (14, 199),
        "city fire station,space shuttle,castle,race car",
        "A creative {noun} by {brand} with hundreds of pieces for ages 8 and up.",
        "compatible with other bricks;illustrated instructions;minifigures included;motorised parts",
    ),
    _spec(
        "Garden>Grills",
        "gas grill",
        "Flamecraft,Grillmaster,Ember",
        (149, 1299),
        "3 burner,4 burner with side burner,portable,kamado charcoal",
        "A {brand} {noun} for backyard barbecues with even heat across the grate.",
        "cast iron grates;built-in thermometer;foldable side tables;electronic ignition",
        1.0,
    ),
    _spec(
        "Garden>Grill Accessories>Tools",
        "grill tool set",
        "Flamecraft,Ember,Pitmaster",
        (12, 69),
        "5 piece stainless,3 piece with case,brush and scraper,meat thermometer kit",
        "A {noun} by {brand} with spatula, tongs and fork for safe grilling.",
        "stainless steel;long heat-proof handles;hanging loops;dishwasher safe",
    ),
)

COMPLEMENTS: tuple[ComplementRule, ...] = (
    ComplementRule(
        anchor="Electronics>Phones", complement="Electronics>Phone Accessories>Cases", noun="Shockproof case"
    ),
    ComplementRule(
        anchor="Electronics>Phones", complement="Electronics>Phone Accessories>Chargers", noun="Fast charger"
    ),
    ComplementRule(
        anchor="Electronics>Cameras",
        complement="Electronics>Camera Accessories>Memory Cards",
        noun="High-speed memory card",
    ),
    ComplementRule(
        anchor="Electronics>Laptops", complement="Electronics>Computer Accessories>Laptop Sleeves", noun="Fitted sleeve"
    ),
    ComplementRule(
        anchor="Electronics>Printers",
        complement="Electronics>Printer Supplies>Ink Cartridges",
        noun="Original ink cartridge",
    ),
    ComplementRule(anchor="Gaming>Consoles", complement="Gaming>Controllers", noun="Extra wireless controller"),
    ComplementRule(
        anchor="Home>Kitchen>Coffee Machines", complement="Grocery>Coffee>Coffee Beans", noun="Espresso beans selected"
    ),
    ComplementRule(
        anchor="Sports>Running>Running Shoes", complement="Sports>Running>Socks", noun="Matching running socks"
    ),
    ComplementRule(anchor="Beauty>Hair>Shampoo", complement="Beauty>Hair>Conditioner", noun="Matching conditioner"),
    ComplementRule(anchor="Garden>Grills", complement="Garden>Grill Accessories>Tools", noun="Grill tool set"),
)

CAMPAIGNS = (
    (
        "spring-phones",
        "Upgrade your smartphone: the latest 5G phones with OLED screens and triple cameras",
        ["Electronics>Phones"],
    ),
    (
        "photo-week",
        "Photo week: digital cameras, lenses and fast memory cards for 4K video",
        ["Electronics>Cameras", "Electronics>Camera Accessories>Memory Cards"],
    ),
    (
        "coffee-lovers",
        "For coffee lovers: espresso machines and freshly roasted coffee beans",
        ["Home>Kitchen>Coffee Machines", "Grocery>Coffee>Coffee Beans"],
    ),
    (
        "run-season",
        "Running season: cushioned running shoes and blister-free socks",
        ["Sports>Running>Running Shoes", "Sports>Running>Socks"],
    ),
    (
        "game-night",
        "Game night: game consoles and wireless controllers for 4K gaming",
        ["Gaming>Consoles", "Gaming>Controllers"],
    ),
    (
        "summer-bbq",
        "Summer barbecue: gas grills and grill tool sets for the garden",
        ["Garden>Grills", "Garden>Grill Accessories>Tools"],
    ),
)
