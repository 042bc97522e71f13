import { describe, expect, it } from "vitest";
import { Epistemic } from "../../../src/tasks/activelearning/epistemic.js";
import { First, Last } from "../../../src/tasks/activelearning/first.js";
import { Random, randomWeights, weightedIndex } from "../../../src/tasks/activelearning/random.js";
import { toCandidate } from "../../../src/tasks/activelearning/unlabeled-index.js";
import { candidate, context, request, seeded } from "./helpers.js";

describe("First and Last", () => {
  const pool = [candidate("img_10"), candidate("img_02"), candidate("Img_99"), candidate("img_2")];

  it("take the lowest and the highest id in code point order (Python's sort)", async () => {
    // "I" (0x49) sorts before "i" (0x69); "img_02" < "img_10" < "img_2".
    expect(await new First().select(request("first"), context(pool, 100))).toEqual({ id: "Img_99" });
    expect(await new Last().select(request("last"), context(pool, 100))).toEqual({ id: "img_2" });
  });

  it("return null when nothing is unlabeled", async () => {
    expect(await new First().select(request("first"), context([], 100))).toBeNull();
    expect(await new Last().select(request("last"), context([], 100))).toBeNull();
  });
});

describe("Random", () => {
  it("weighs each image by the seconds since this strategy served it (never served: since 0)", () => {
    const pool = [
      candidate("a"),
      candidate("b", { served: { random: 950 } }),
      candidate("c", { served: { random: 990, other: 10 } }),
      candidate("d", { served: { other: 999 } }),
    ];
    expect(Array.from(randomWeights(pool, "random", 1000))).toEqual([1000, 50, 10, 1000]);
    expect(Array.from(randomWeights(pool, "other", 1000))).toEqual([1000, 1000, 990, 1]);
    // A clock ahead of ours does not make a negative weight.
    expect(Array.from(randomWeights([candidate("x", { served: { random: 1100 } })], "random", 1000))).toEqual([0]);
  });

  it("draws like random.choices: the first cumulative weight above u * total", () => {
    const w = [1, 0, 3];
    expect(weightedIndex(w, 0)).toBe(0);
    expect(weightedIndex(w, 0.2499)).toBe(0);
    expect(weightedIndex(w, 0.25)).toBe(2); // cumulative 1 is not > 1; zero weight never chosen
    expect(weightedIndex(w, 0.9999)).toBe(2);
    // All zero (all served this second): uniform instead of Python's error.
    expect(weightedIndex([0, 0, 0, 0], 0.6)).toBe(2);
  });

  it("picks in proportion to the weights (20,000 seeded draws)", async () => {
    const pool = [
      candidate("a", { served: { random: 0 } }), // weight 100
      candidate("b", { served: { random: 50 } }), // 50
      candidate("c", { served: { random: 90 } }), // 10
      candidate("d", { served: { random: 100 } }), // 0: served this second
    ];
    const rng = seeded(42);
    const counts: Record<string, number> = { a: 0, b: 0, c: 0, d: 0 };
    const strategy = new Random();
    for (let i = 0; i < 20_000; i++) {
      const r = await strategy.select(request("random"), context(pool, 100, rng));
      counts[r?.id as string]! += 1;
    }
    expect(counts.d).toBe(0);
    // Expected 12,500 / 6,250 / 1,250; binomial sd about 68 / 63 / 34.
    expect(Math.abs((counts.a as number) - 12_500)).toBeLessThan(350);
    expect(Math.abs((counts.b as number) - 6_250)).toBeLessThan(320);
    expect(Math.abs((counts.c as number) - 1_250)).toBeLessThan(170);
  });

  it("returns the chosen image's weight, and null with no candidates", async () => {
    const r = await new Random().select(
      request("random"),
      context([candidate("x")], 1234, () => 0.5),
    );
    expect(r).toEqual({ id: "x", weight: 1234 });
    expect(await new Random().select(request("random"), context([], 1))).toBeNull();
  });

  it("is reproducible with a fixed seed", async () => {
    const pool = Array.from({ length: 50 }, (_, i) => candidate(`img_${String(i).padStart(2, "0")}`));
    const draw = async (seed: number) => {
      const rng = seeded(seed);
      const out: string[] = [];
      for (let i = 0; i < 10; i++) {
        out.push(((await new Random().select(request("random"), context(pool, 10, rng))) as { id: string }).id);
      }
      return out;
    };
    expect(await draw(7)).toEqual(await draw(7));
    expect(await draw(7)).not.toEqual(await draw(8));
  });
});

describe("Epistemic", () => {
  const now = 1_000_000;

  it("picks the highest entropy among images not served within `reset`", async () => {
    const pool = [
      candidate("a", { scores: { epistemic_entropy: 0.2 } }),
      candidate("b", { scores: { epistemic_entropy: 0.9 }, served: { epistemic: now - 60 } }), // served a minute ago
      candidate("c", { scores: { epistemic_entropy: 0.5 }, served: { epistemic: now - 90_000 } }), // over a day ago
      candidate("d"),
    ];
    const r = await new Epistemic().select(request("epistemic"), context(pool, now));
    expect(r).toEqual({ id: "c", epistemic_entropy: { score: 0.5, ts: 86400 } });
  });

  it("falls back to the least recently served image when every one was served recently", async () => {
    const pool = [
      candidate("a", { scores: { epistemic_entropy: 0.9 }, served: { epistemic: now - 10 } }),
      candidate("b", { scores: { epistemic_entropy: 0.1 }, served: { epistemic: now - 500 } }),
    ];
    const r = await new Epistemic().select(request("epistemic"), context(pool, now));
    expect(r).toEqual({ id: "b", epistemic_entropy: { score: 0.1, ts: 500 } });
  });

  it("ranks unscored images last, ties by id, and reads its own key and reset", async () => {
    const unscored = [candidate("b"), candidate("a")];
    expect(await new Epistemic().select(request("epistemic"), context(unscored, now))).toEqual({
      id: "a",
      epistemic_entropy: { score: null, ts: 86400 },
    });
    const pool = [
      candidate("a", { scores: { u: 1 }, served: { mine: now - 100 } }),
      candidate("b", { scores: { u: 2 }, served: { mine: now - 100 } }),
      candidate("c"),
    ];
    const s = new Epistemic({ key: "u", reset: 50 });
    expect(((await s.select(request("mine"), context(pool, now))) as { id: string }).id).toBe("b");
  });

  it("with k > 0 draws among the best k", async () => {
    const pool = Array.from({ length: 10 }, (_, i) => candidate(`i${i}`, { scores: { epistemic_entropy: i } }));
    const seen = new Set<string>();
    const rng = seeded(3);
    for (let n = 0; n < 200; n++) {
      seen.add(((await new Epistemic({ k: 3 }).select(request("e"), context(pool, now, rng))) as { id: string }).id);
    }
    expect([...seen].sort()).toEqual(["i7", "i8", "i9"]);
  });
});

describe("toCandidate", () => {
  it("keeps numeric info entries and each strategy's ts", () => {
    expect(
      toCandidate("x", {
        ts: 5,
        name: "x.nii",
        dice: 0.5,
        bad: Number.NaN,
        nested: { a: 1 },
        strategy: { random: { ts: 7, client_id: "a" }, first: { client_id: "b" }, broken: null },
      }),
    ).toEqual({ id: "x", served: { random: 7 }, scores: { ts: 5, dice: 0.5 } });
  });
});
