// A small deterministic generator (an LCG) for tests that make their inputs at random: the same seed makes the same
// inputs on every run, so a failure can be repeated.

/** Numbers in [0, n) from the seed; the high bits of each step (an LCG's low bits repeat with a short period). */
export function randomFrom(seed: number): (n: number) => number {
  let s = seed >>> 0;
  return (n) => {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    return (s >>> 8) % n;
  };
}
