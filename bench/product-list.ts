/**
 * The page of the deployed benchmark: a shop's product list of about 57 KB of HTML in Nunjucks, with
 * the visitor's cart as one hole in its header. Its 40 products are made up from a seeded generator,
 * so every run renders the same bytes: varied names, prices, sizes, blurbs and reviews, image
 * hashes, not one card the same. It compresses as catalogue pages do: gzip at level 6 to 7.8 KB,
 * Brotli at quality 4 (compression()'s) to 7.7 KB, at quality 11 to 6.3 KB.
 */
import nunjucks from 'nunjucks';
import { installCacheTag, render } from '../src/engines/nunjucks.js';

export const PRODUCT_LIST = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ category.title }} | Northwind Outfitters</title>
<link rel="stylesheet" href="/assets/site.3f9a1c.css">
<script src="/assets/site.8b2e47.js" defer></script>
</head>
<body class="catalogue">
<header class="site-header">
  <a class="logo" href="/">Northwind Outfitters</a>
  <form class="search" action="/search"><input type="search" name="q" placeholder="Search the shop" aria-label="Search"><button>Search</button></form>
  <nav class="sections">{% for section in sections %}<a href="/c/{{ section | lower | replace(' ', '-') }}">{{ section }}</a>{% endfor %}</nav>
  <div class="cart">{% hole "cart" %}</div>
</header>
<main>
<nav class="breadcrumbs"><a href="/">Home</a> › <a href="/c/{{ category.parent | lower }}">{{ category.parent }}</a> › {{ category.title }}</nav>
<h1>{{ category.title }}</h1>
<p class="intro">{{ category.intro }}</p>
<ul class="products">
{% for product in products %}<li class="product" data-sku="{{ product.sku }}">
  <a class="block aspect-square overflow-hidden rounded-lg bg-stone-100 hover:opacity-90" href="/p/{{ product.slug }}"><img src="/img/{{ product.image }}/320.webp" srcset="/img/{{ product.image }}/640.webp 2x" width="320" height="320" loading="lazy" alt="{{ product.name }}"></a>
  <h2><a href="/p/{{ product.slug }}">{{ product.name }}</a></h2>
  <p class="blurb">{{ product.blurb }}</p>
  <ul class="specs"><li>{{ product.fabric }}</li><li>{{ product.weight }} g</li><li>Sizes {% for size in product.sizes %}<span class="size{% if size.low %} low{% endif %}" title="{{ size.left }} left">{{ size.name }}</span>{% endfor %}</li></ul>
  <p class="rating" aria-label="Rated {{ product.rating }} out of 5">{{ product.rating }} ★ ({{ product.reviews }} reviews)</p>
  <blockquote class="review">“{{ product.review }}” <cite>{{ product.reviewer }}, {{ product.town }}</cite></blockquote>
  <p class="price">{% if product.was %}<del>\${{ product.was }}</del> {% endif %}<strong>\${{ product.price }}</strong></p>
  <form method="post" action="/cart"><input type="hidden" name="sku" value="{{ product.sku }}"><button>Add to cart</button></form>
</li>
{% endfor %}</ul>
</main>
<footer class="site-footer"><p>Prices include VAT. Free returns within 30 days. © Northwind Outfitters</p></footer>
</body>
</html>
`;

const ADJECTIVES = [
  'Alpine',
  'Coastal',
  'Rugged',
  'Featherweight',
  'Waxed',
  'Merino',
  'Quilted',
  'Packable',
  'Insulated',
  'Breathable',
  'Stormproof',
  'Heritage',
  'Trail',
  'Urban',
  'Summit',
  'Harbour',
  'Thermal',
  'Ripstop',
  'Organic',
  'Recycled',
];
const NOUNS = [
  'Parka',
  'Fleece',
  'Rain Shell',
  'Down Vest',
  'Hiking Boot',
  'Day Pack',
  'Beanie',
  'Flannel Shirt',
  'Softshell',
  'Trail Runner',
  'Base Layer',
  'Cargo Trouser',
  'Anorak',
  'Gilet',
  'Duffel Bag',
  'Gaiter',
  'Bucket Hat',
  'Waders',
  'Poncho',
  'Mitten',
];
const COLOURS = ['in moss', 'in slate', 'in rust', 'in navy', 'in sand', 'in charcoal', 'in ochre', 'in forest green', 'in glacier blue', 'in plum'];
const CLAUSES = [
  'cut for layering over a thick knit',
  'with taped seams and a storm flap',
  'that packs into its own chest pocket',
  'lined with brushed recycled polyester',
  'finished with a water-repellent coating free of PFCs',
  'made to be repaired, with spare buttons in the pocket',
  'with a two-way zip and pit vents for long climbs',
  'woven from wool of farms in the Scottish borders',
  'on a grippy outsole that drains quickly',
  'with reflective trim for dark evenings',
  'in a relaxed fit with room to move',
  'that dries overnight in a mountain hut',
];

const FIBRES = ['recycled polyester', 'merino wool', 'organic cotton', 'nylon', 'hemp', 'elastane', 'lyocell', 'down', 'waxed cotton', 'polyamide'];
const SIZES = ['XS', 'S', 'M', 'L', 'XL', 'XXL'];

const HEX = '0123456789abcdef';
/** What reviewers write, and who they are: the catalogue's free text. */
const REVIEWS = [
  'Kept me dry on a long wet day on the Glyders, and still looks new after a season of use.',
  'The sizing runs a little small, so I sent it back for the next size up and it fits perfectly now.',
  'Warm enough for winter dog walks without being bulky, and the pockets are deep enough for gloves.',
  'Lovely colour, better than in the photos. The zip is stiff at first but loosens up after a week.',
  'I wear it almost every day on the bike to work. It has survived three winters so far.',
  'Not the cheapest, but you get what you pay for: the stitching is excellent and it washes well.',
  'Packs down smaller than my old one, which makes a real difference on a multi-day trip.',
  'The hood is brilliant, it stays on in strong wind and moves with your head when you turn.',
  'Bought this for my husband, who never wears anything else now. Ordering a second one for me.',
  'Comfortable straight out of the box, no blisters at all on a twenty mile walk.',
  'A bit warm for summer walking, but perfect for autumn and spring in the hills.',
  'The fabric feels lighter than I expected, but it has held up to brambles and rocks so far.',
  'Great value in the sale. The customer service team sorted out an exchange within two days.',
  'My daughter took it to Iceland and said it was the best thing she packed.',
  'The cuffs are a nice touch and keep the rain out of your sleeves when you lift your arms.',
  'Runs true to size. I am usually a medium and the medium has enough room for a fleece underneath.',
  'I had the previous version for eight years, and this one is even better made.',
  'Slightly disappointed with the colour, which is darker than the picture, but otherwise great.',
  'Dries quickly on a radiator overnight, which matters when you are camping in Scotland.',
  'The grip on wet rock is excellent and the soles show hardly any wear after a year.',
  'Light enough to carry all day and warm enough to sit in at the top of a cold summit.',
  'Would recommend to anyone who walks in the Lakes, it copes with anything the weather does.',
  'The repair service fixed a torn seam for free, which is why I keep buying from this shop.',
  'Fits well over a thick jumper, and the long back keeps the wind off when cycling.',
];
const REVIEWERS = [
  'Ailsa',
  'Bram',
  'Catrin',
  'Dev',
  'Eilidh',
  'Finn',
  'Gwen',
  'Hamish',
  'Isla',
  'Jonah',
  'Kerys',
  'Lachlan',
  'Morag',
  'Niall',
  'Orla',
  'Priya',
];
const TOWNS = [
  'Keswick',
  'Fort William',
  'Bala',
  'Hebden Bridge',
  'Ambleside',
  'Aviemore',
  'Betws-y-Coed',
  'Hay-on-Wye',
  'Buxton',
  'Ullapool',
  'Settle',
  'Oban',
];

const sentence = (text: string): string => text[0]!.toUpperCase() + text.slice(1);

/** A small seeded generator (mulberry32): the same catalogue on every run. */
function seeded(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The template's context: 40 products and the category around them. */
export function productListContext(): object {
  const random = seeded(20_240_611);
  const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
  const token = (length: number, alphabet: string) => Array.from({ length }, () => pick([...alphabet])).join('');
  const products = Array.from({ length: 40 }, (_, i) => {
    const name = `${pick(ADJECTIVES)} ${pick(NOUNS)} ${pick(COLOURS)}`;
    const price = (19 + random() * 380).toFixed(2);
    const onSale = random() < 0.3;
    return {
      sku: `NW-${(4000 + i * 37 + Math.floor(random() * 30)).toString(36).toUpperCase()}-${Math.floor(random() * 9000 + 1000)}`,
      slug: `${name.toLowerCase().replace(/[^a-z]+/g, '-')}-${i}`,
      name,
      blurb: sentence(`${pick(CLAUSES)}, ${pick(CLAUSES)}; ${pick(CLAUSES)}.`),
      image: token(16, HEX),
      review: `${pick(REVIEWS)} ${pick(REVIEWS)}`,
      reviewer: pick(REVIEWERS),
      town: pick(TOWNS),
      fabric: `${Math.floor(40 + random() * 60)}% ${pick(FIBRES)}, the rest ${pick(FIBRES)}`,
      weight: Math.floor(180 + random() * 1400),
      sizes: SIZES.filter(() => random() < 0.8).map((size) => {
        const left = Math.floor(random() * 40);
        return { name: size, left, low: left < 5 };
      }),
      rating: (3 + random() * 2).toFixed(1),
      reviews: Math.floor(random() * 900),
      price,
      was: onSale ? (Number(price) * (1.15 + random() * 0.3)).toFixed(2) : undefined,
    };
  });
  return {
    sections: ['Jackets', 'Fleeces', 'Footwear', 'Packs and Bags', 'Accessories', 'Sale'],
    category: {
      title: 'Jackets and Shells',
      parent: 'Clothing',
      intro: 'Waterproof shells, insulated parkas and light layers for the hills and the city, tested on long days in wet weather.',
    },
    products,
  };
}

/**
 * A Nunjucks environment with the cache tag and holes installed, as a site has it: its pages found
 * by name by its loader, each compiled once and kept, as Nunjucks keeps what a loader finds.
 */
export function productListEnvironment(): nunjucks.Environment {
  const pages: Record<string, string> = {
    'product-list.njk': PRODUCT_LIST,
    'static-product-list.njk': STATIC_PRODUCT_LIST,
    'slow-holes-product-list.njk': SLOW_HOLES_PRODUCT_LIST,
  };
  const loader: nunjucks.ILoader = { getSource: (name) => ({ src: pages[name]!, path: name, noCache: false }) };
  return installCacheTag(new nunjucks.Environment(loader, { autoescape: true }));
}

/** Renders the product list; its cart is left a hole for the page cache (or the request's scope) to fill. */
export function renderProductList(env: nunjucks.Environment): Promise<string> {
  return render(env, 'product-list.njk', productListContext());
}

/** The same page with the visitor's cart written in: a page without holes. */
const STATIC_PRODUCT_LIST = PRODUCT_LIST.replace('{% hole "cart" %}', cartOf('ann'));

/** Renders the product list with its cart written in (see `STATIC_PRODUCT_LIST`). */
export function renderStaticProductList(env: nunjucks.Environment): Promise<string> {
  return render(env, 'static-product-list.njk', productListContext());
}

/**
 * The product list whose holes take a while, as a shop's services answer them: the cart (which its
 * builder makes in 100 ms) and, under the products, recommendations for the visitor (in 300 ms).
 */
const SLOW_HOLES_PRODUCT_LIST = PRODUCT_LIST.replace('</main>', '<aside class="recommendations">{% hole "recommendations" %}</aside>\n</main>');

/** Renders the product list with its cart and its recommendations left holes (see `SLOW_HOLES_PRODUCT_LIST`). */
export function renderSlowHolesProductList(env: nunjucks.Environment): Promise<string> {
  return render(env, 'slow-holes-product-list.njk', productListContext());
}

/** How long the builders of the slow holes take, in milliseconds. */
export const SLOW_CART_MS = 100;
export const SLOW_RECOMMENDATIONS_MS = 300;

/** The recommendations of a visitor, as the hole's builder renders them. */
export function recommendationsOf(visitor: string): string {
  const picks = ['Waxed Anorak in moss', 'Merino Beanie in slate', 'Packable Down Vest in rust'];
  return `<h2>Picked for ${visitor}</h2><ul>${picks.map((name) => `<li><a href="/p/${name.toLowerCase().replace(/\W+/g, '-')}">${name}</a></li>`).join('')}</ul>`;
}

/** The cart of a visitor, as the hole's builder renders it. */
export function cartOf(visitor: string): string {
  return `<a href="/cart" class="cart-link" data-visitor="${visitor}">Cart <span class="count">3</span> · $214.70</a>`;
}
