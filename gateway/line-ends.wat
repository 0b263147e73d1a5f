;; The intake's check for bare CR and bare LF in DATA (LineEndingChecker in gateway/intake.ts): SMTP smuggling
;; relies on line ends that are not CRLF. Built into dist/gateway/line-ends.wasm by scripts/build-wasm.ts.
;;
;; A chunk is valid when every LF follows a CR and every CR is followed by an LF: the positions of the LFs are the
;; positions of the CRs moved on by one. 64 bytes at a time, with SIMD, the two sets are bit masks, and one
;; comparison checks that (the JavaScript loop it replaces called Buffer.indexOf once per line end, ~85 us for
;; 100 KB of mail).
(module
  (memory (export "memory") 2)

  ;; Whether the n bytes at offset 0 hold a bare line end. `carry`: 1 when the byte before them (the end of the
  ;; previous chunk) was a CR, which the first byte must then follow with an LF. A CR as the last byte is not
  ;; bare here (the next chunk, or the end of the data, decides). The 64 bytes after the n are overwritten.
  (func (export "bare") (param $n i32) (param $carry i64) (result i32)
    (local $p i32) (local $j i32) (local $v v128) (local $cr i64) (local $lf i64) (local $left i32)
    (memory.fill (local.get $n) (i32.const 0) (i32.const 64))
    (block $done
      (loop $block
        (br_if $done (i32.ge_u (local.get $p) (local.get $n)))
        (local.set $cr (i64.const 0))
        (local.set $lf (i64.const 0))
        (local.set $j (i32.const 0))
        (loop $sixteen
          (local.set $v (v128.load (i32.add (local.get $p) (local.get $j))))
          (local.set $cr
            (i64.or (local.get $cr)
              (i64.shl (i64.extend_i32_u (i8x16.bitmask (i8x16.eq (local.get $v) (i8x16.splat (i32.const 13)))))
                (i64.extend_i32_u (local.get $j)))))
          (local.set $lf
            (i64.or (local.get $lf)
              (i64.shl (i64.extend_i32_u (i8x16.bitmask (i8x16.eq (local.get $v) (i8x16.splat (i32.const 10)))))
                (i64.extend_i32_u (local.get $j)))))
          (local.set $j (i32.add (local.get $j) (i32.const 16)))
          (br_if $sixteen (i32.lt_u (local.get $j) (i32.const 64))))
        ;; The LFs the CRs call for, within the bytes there are (a CR at the very end calls for one beyond them).
        (local.set $left (i32.sub (local.get $n) (local.get $p)))
        (if (i64.ne
              (i64.and
                (i64.or (i64.shl (local.get $cr) (i64.const 1)) (local.get $carry))
                (select
                  (i64.const -1)
                  (i64.sub (i64.shl (i64.const 1) (i64.extend_i32_u (local.get $left))) (i64.const 1))
                  (i32.ge_u (local.get $left) (i32.const 64))))
              (local.get $lf))
          (then (return (i32.const 1))))
        (local.set $carry (i64.shr_u (local.get $cr) (i64.const 63)))
        (local.set $p (i32.add (local.get $p) (i32.const 64)))
        (br $block)))
    (i32.const 0))
)
