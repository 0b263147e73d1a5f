;; The word tokenizer of dlp/engine.ts (wordTokens) and the word hash every token look-up uses (hashWord).
;; Built into dist/dlp/tokens.wasm by scripts/build-wasm.ts (npm run build). engine.ts lays out the memory and
;; sets the globals below; it reads the results through typed arrays over the same memory.
;;
;; A token is a run of word characters: a-z, 0-9, A-Z, and beyond ASCII the letters and marks of $classes (a
;; table of 65,536 bytes that engine.ts fills: 1 a-z, 2 0-9, 4 any other word character, 0 none). The JavaScript
;; loop this replaces read one character at a time and carried an FNV-1a hash along it (~3 ns a character, the
;; scan's largest item). Here 64 characters at a time are classified with SIMD into three bit masks (word, a-z,
;; 0-9); the tokens' starts and ends are the masks' edges, and each token is hashed once, four characters (64 bits)
;; at a time, from its code units.
;;
;; The hash of a word (code units u[0..len)): h = SEED xor len; for each group of four code units, the last ones
;; zero beyond the word, and at least two groups: h = (h xor group) * M (mod 2^64); the result is the low 32 bits of
;; h xor (h >> 32). For a given length the groups' steps are a bijection of the 64-bit state, so two words of one
;; length differ in h before the fold to 32 bits. (test/dlp/engine.test.ts writes it again with BigInt.)
(module
  (memory (export "memory") 1)

  ;; Where engine.ts put each array (byte offsets): the class table, the code units of the text (with room for
  ;; 80 more after the last one), and the tokens' starts, ends, hashes (i32 each), digits bits (u8), and the
  ;; indices of the tokens that hold a digit (i32).
  (global $classes (export "classes") (mut i32) (i32.const 0))
  (global $units (export "units") (mut i32) (i32.const 0))
  (global $starts (export "starts") (mut i32) (i32.const 0))
  (global $ends (export "ends") (mut i32) (i32.const 0))
  (global $hashes (export "hashes") (mut i32) (i32.const 0))
  (global $digits (export "digits") (mut i32) (i32.const 0))
  (global $withDigit (export "withDigit") (mut i32) (i32.const 0))
  ;; Results of tokenize besides the token count: how many tokens hold a digit, the end of the last token kept.
  (global $digitCount (export "digitCount") (mut i32) (i32.const 0))
  (global $lastEnd (export "lastEnd") (mut i32) (i32.const 0))

  ;; WordTokens.digits bits (engine.ts).
  (global $HAS_DIGIT i32 (i32.const 2))
  (global $DIGIT_AND_LETTERS i32 (i32.const 4))
  (global $LETTERS_THEN_DIGIT i32 (i32.const 1))

  (global $SEED i64 (i64.const 0x9e3779b97f4a7c15))
  (global $M i64 (i64.const 0xff51afd7ed558ccd))

  ;; A word's hash from the state after its last group: the high half folded into the low one.
  (func $finish (param $h i64) (result i32)
    (i32.wrap_i64 (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32)))))

  ;; The bits of a group of four code units that belong to a word with `left` code units from the group's start on:
  ;; none for left <= 0, all for left >= 4.
  (func $groupMask (param $left i32) (result i64)
    (select
      (i64.const -1)
      (select
        (i64.const 0)
        (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (i32.shl (local.get $left) (i32.const 4)))) (i64.const 1))
        (i32.le_s (local.get $left) (i32.const 0)))
      (i32.ge_s (local.get $left) (i32.const 4))))

  ;; The hash of the `len` code units at byte offset `at` (the 16 bytes after them may be read, not used).
  (func $hashAt (export "hashAt") (param $at i32) (param $len i32) (result i32)
    (local $h i64) (local $g i32) (local $groups i32)
    ;; At least two groups (a word of up to eight code units is hashed without a loop in tokenize).
    (local.set $groups (i32.shr_u (i32.add (local.get $len) (i32.const 3)) (i32.const 2)))
    (if (i32.lt_u (local.get $groups) (i32.const 2)) (then (local.set $groups (i32.const 2))))
    (local.set $h (i64.xor (global.get $SEED) (i64.extend_i32_u (local.get $len))))
    (loop $group
      (local.set $h
        (i64.mul
          (i64.xor
            (local.get $h)
            (i64.and
              (i64.load (i32.add (local.get $at) (i32.shl (local.get $g) (i32.const 3))))
              (call $groupMask (i32.sub (local.get $len) (i32.shl (local.get $g) (i32.const 2))))))
          (global.get $M)))
      (local.set $g (i32.add (local.get $g) (i32.const 1)))
      (br_if $group (i32.lt_u (local.get $g) (local.get $groups))))
    (call $finish (local.get $h)))

  ;; The class of code unit i.
  (func $class (param $i i32) (result i32)
    (i32.load8_u
      (i32.add (global.get $classes) (i32.load16_u (i32.add (global.get $units) (i32.shl (local.get $i) (i32.const 1)))))))

;; The tokens of the n code units at $units, which no token runs past (code unit n, when the text has one, is no
  ;; word character). Writes them from index 0 on, their places offset by `base`; `lastEnd` is the end of the last
  ;; token kept before them, relative to `base` (-2 for none). Returns the count; $digitCount and $lastEnd (relative)
  ;; are set. The 80 code units after the n are overwritten with zeros. Everything a token needs is written out in
  ;; the loop (a call per token, to helpers, cost as much as the rest).
  (func $tokenize (export "tokenize") (param $n i32) (param $base i32) (param $lastEndIn i32) (result i32)
    (local $p i32) (local $at i32) (local $k i32) (local $j i32) (local $cls i32) (local $pos i32)
    (local $a v128) (local $b v128) (local $high v128) (local $bytes v128)
    (local $word i64) (local $letters i64) (local $digitsMask i64) (local $bit i64) (local $m i64)
    (local $before i64) (local $startBits i64) (local $events i64)
    ;; The token being read: its start, where it starts in this block of 64 (0 if before), classes seen before.
    (local $s i32) (local $from i32) (local $seenBefore i32) (local $seen i32)
    (local $e i32) (local $len i32) (local $unitAt i32) (local $h i64) (local $g i32) (local $bits i32)
    (local $open i64) (local $lastEnd i32) (local $digitCount i32)
    (local.set $lastEnd (local.get $lastEndIn))
    (memory.fill (i32.add (global.get $units) (i32.shl (local.get $n) (i32.const 1))) (i32.const 0) (i32.const 160))
    (block $end
      (loop $block
        (br_if $end (i32.gt_u (local.get $p) (local.get $n)))
        (local.set $at (i32.add (global.get $units) (i32.shl (local.get $p) (i32.const 1))))
        (local.set $word (i64.const 0))
        (local.set $letters (i64.const 0))
        (local.set $digitsMask (i64.const 0))
        (local.set $high (v128.const i64x2 0 0))
        ;; Four times sixteen code units: two vectors of eight, narrowed to bytes (a unit beyond 0x7f is caught
        ;; by $high, and the 64 are then classified from the table instead).
        (local.set $j (i32.const 0))
        (loop $sixteen
          (local.set $a (v128.load (local.get $at)))
          (local.set $b (v128.load offset=16 (local.get $at)))
          (local.set $high (v128.or (local.get $high) (v128.or (local.get $a) (local.get $b))))
          (local.set $bytes (i8x16.narrow_i16x8_u (local.get $a) (local.get $b)))
          (local.set $a (i8x16.lt_u (i8x16.sub (local.get $bytes) (i8x16.splat (i32.const 97))) (i8x16.splat (i32.const 26))))
          (local.set $b (i8x16.lt_u (i8x16.sub (local.get $bytes) (i8x16.splat (i32.const 48))) (i8x16.splat (i32.const 10))))
          (local.set $letters
            (i64.or (local.get $letters) (i64.shl (i64.extend_i32_u (i8x16.bitmask (local.get $a))) (i64.extend_i32_u (local.get $j)))))
          (local.set $digitsMask
            (i64.or (local.get $digitsMask) (i64.shl (i64.extend_i32_u (i8x16.bitmask (local.get $b))) (i64.extend_i32_u (local.get $j)))))
          (local.set $a
            (v128.or
              (v128.or (local.get $a) (local.get $b))
              (i8x16.lt_u (i8x16.sub (local.get $bytes) (i8x16.splat (i32.const 65))) (i8x16.splat (i32.const 26)))))
          (local.set $word
            (i64.or (local.get $word) (i64.shl (i64.extend_i32_u (i8x16.bitmask (local.get $a))) (i64.extend_i32_u (local.get $j)))))
          (local.set $at (i32.add (local.get $at) (i32.const 32)))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $sixteen (i32.lt_u (local.get $j) (i32.const 64))))
        (if (v128.any_true (v128.and (local.get $high) (i16x8.splat (i32.const 0xff80))))
          (then
            (local.set $word (i64.const 0))
            (local.set $letters (i64.const 0))
            (local.set $digitsMask (i64.const 0))
            (local.set $j (i32.const 0))
            (loop $each
              (local.set $cls (call $class (i32.add (local.get $p) (local.get $j))))
              (local.set $bit (i64.shl (i64.const 1) (i64.extend_i32_u (local.get $j))))
              (if (local.get $cls) (then (local.set $word (i64.or (local.get $word) (local.get $bit)))))
              (if (i32.eq (local.get $cls) (i32.const 1)) (then (local.set $letters (i64.or (local.get $letters) (local.get $bit)))))
              (if (i32.eq (local.get $cls) (i32.const 2)) (then (local.set $digitsMask (i64.or (local.get $digitsMask) (local.get $bit)))))
              (local.set $j (i32.add (local.get $j) (i32.const 1)))
              (br_if $each (i32.lt_u (local.get $j) (i32.const 64))))))
        ;; Edges: a start where a word character follows none, an end where none follows one; in order, a start
        ;; and then its end (the end of a token open from before comes first).
        (local.set $before (i64.or (i64.shl (local.get $word) (i64.const 1)) (local.get $open)))
        (local.set $startBits (i64.and (local.get $word) (i64.xor (local.get $before) (i64.const -1))))
        (local.set $events
          (i64.or (local.get $startBits) (i64.and (local.get $before) (i64.xor (local.get $word) (i64.const -1)))))
        (local.set $from (i32.const 0))
        (block $events
          (loop $event
            (br_if $events (i64.eqz (local.get $events)))
            (local.set $pos (i32.wrap_i64 (i64.ctz (local.get $events))))
            (local.set $events (i64.and (local.get $events) (i64.sub (local.get $events) (i64.const 1))))
            (if (i32.wrap_i64 (i64.and (i64.shr_u (local.get $startBits) (i64.extend_i32_u (local.get $pos))) (i64.const 1)))
              (then
                (local.set $s (i32.add (local.get $p) (local.get $pos)))
                (local.set $from (local.get $pos))
                (local.set $seenBefore (i32.const 0))
                (br $event)))
            (local.set $e (i32.add (local.get $p) (local.get $pos)))
            (local.set $len (i32.sub (local.get $e) (local.get $s)))
            (local.set $unitAt (i32.add (global.get $units) (i32.shl (local.get $s) (i32.const 1))))
            ;; The "s" of a possessive right after the token before it ("it's", "patient’s"): no token.
            (if (i32.eq (local.get $len) (i32.const 1))
              (then
                (if (i32.and
                      (i32.eq (i32.load16_u (local.get $unitAt)) (i32.const 115))
                      (i32.eq (i32.sub (local.get $s) (i32.const 1)) (local.get $lastEnd)))
                  (then
                    (local.set $j (i32.load16_u (i32.sub (local.get $unitAt) (i32.const 2))))
                    (br_if $event (i32.or (i32.eq (local.get $j) (i32.const 39)) (i32.eq (local.get $j) (i32.const 0x2019))))))))
            ;; Its hash: the first two groups without a branch (groupMask written out), then the rest of a longer word.
            (local.set $h
              (i64.mul
                (i64.xor
                  (i64.xor (global.get $SEED) (i64.extend_i32_u (local.get $len)))
                  (i64.and
                    (i64.load (local.get $unitAt))
                    (select
                      (i64.const -1)
                      (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (i32.shl (local.get $len) (i32.const 4)))) (i64.const 1))
                      (i32.ge_u (local.get $len) (i32.const 4)))))
                (global.get $M)))
            (local.set $h
              (i64.mul
                (i64.xor
                  (local.get $h)
                  (i64.and
                    (i64.load offset=8 (local.get $unitAt))
                    (select
                      (i64.const -1)
                      (select
                        (i64.const 0)
                        (i64.sub
                          (i64.shl (i64.const 1) (i64.extend_i32_u (i32.shl (i32.sub (local.get $len) (i32.const 4)) (i32.const 4))))
                          (i64.const 1))
                        (i32.le_u (local.get $len) (i32.const 4)))
                      (i32.ge_u (local.get $len) (i32.const 8)))))
                (global.get $M)))
            (if (i32.gt_u (local.get $len) (i32.const 8))
              (then
                (local.set $g (i32.const 2))
                (loop $group
                  (local.set $h
                    (i64.mul
                      (i64.xor
                        (local.get $h)
                        (i64.and
                          (i64.load (i32.add (local.get $unitAt) (i32.shl (local.get $g) (i32.const 3))))
                          (call $groupMask (i32.sub (local.get $len) (i32.shl (local.get $g) (i32.const 2))))))
                      (global.get $M)))
                  (local.set $g (i32.add (local.get $g) (i32.const 1)))
                  (br_if $group (i32.lt_s (i32.shl (local.get $g) (i32.const 2)) (local.get $len))))))
            ;; The classes it holds (bit 1 a-z, bit 2 0-9): in this block from $from up to $pos, and before.
            (local.set $m
              (i64.and
                (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (local.get $pos))) (i64.const 1))
                (i64.shl (i64.const -1) (i64.extend_i32_u (local.get $from)))))
            (local.set $seen
              (i32.or
                (local.get $seenBefore)
                (i32.shl (i64.ne (i64.and (local.get $digitsMask) (local.get $m)) (i64.const 0)) (i32.const 1))))
            (local.set $bits (i32.const 0))
            (if (i32.and (local.get $seen) (i32.const 2))
              (then
                (local.set $bits (global.get $HAS_DIGIT))
                (i32.store
                  (i32.add (global.get $withDigit) (i32.shl (local.get $digitCount) (i32.const 2)))
                  (local.get $k))
                (local.set $digitCount (i32.add (local.get $digitCount) (i32.const 1)))
                (if (i32.or
                      (i32.and (local.get $seen) (i32.const 1))
                      (i64.ne (i64.and (local.get $letters) (local.get $m)) (i64.const 0)))
                  (then
                    (local.set $bits (i32.or (local.get $bits) (global.get $DIGIT_AND_LETTERS)))
                    ;; Letters a-z, then a digit.
                    (if (i32.eq (call $class (local.get $s)) (i32.const 1))
                      (then
                        (local.set $j (i32.add (local.get $s) (i32.const 1)))
                        (block $done
                          (loop $run
                            (br_if $done (i32.ne (call $class (local.get $j)) (i32.const 1)))
                            (local.set $j (i32.add (local.get $j) (i32.const 1)))
                            (br $run)))
                        (if (i32.eq (call $class (local.get $j)) (i32.const 2))
                          (then (local.set $bits (i32.or (local.get $bits) (global.get $LETTERS_THEN_DIGIT)))))))))))
            (local.set $j (i32.shl (local.get $k) (i32.const 2)))
            (i32.store (i32.add (global.get $starts) (local.get $j)) (i32.add (local.get $base) (local.get $s)))
            (i32.store (i32.add (global.get $ends) (local.get $j)) (i32.add (local.get $base) (local.get $e)))
            (i32.store (i32.add (global.get $hashes) (local.get $j)) (i32.wrap_i64 (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32)))))
            (i32.store8 (i32.add (global.get $digits) (local.get $k)) (local.get $bits))
            (local.set $lastEnd (local.get $e))
            (local.set $k (i32.add (local.get $k) (i32.const 1)))
            (br $event)))
        ;; A token still open at the end of the block: the classes it had in it, for the next.
        (local.set $open (i64.shr_u (local.get $word) (i64.const 63)))
        (if (i32.wrap_i64 (local.get $open))
          (then
            (local.set $m (i64.shl (i64.const -1) (i64.extend_i32_u (local.get $from))))
            (local.set $seenBefore
              (i32.or
                (local.get $seenBefore)
                (i32.or
                  (i64.ne (i64.and (local.get $letters) (local.get $m)) (i64.const 0))
                  (i32.shl (i64.ne (i64.and (local.get $digitsMask) (local.get $m)) (i64.const 0)) (i32.const 1)))))))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $block)))
    (global.set $digitCount (local.get $digitCount))
    (global.set $lastEnd (local.get $lastEnd))
    (local.get $k))
)
