/*
 * sse2_wasm.h - the SSE2 intrinsics that stb_image's JPEG decoder uses, on WebAssembly
 * SIMD (clang -msimd128, wasm_simd128.h).
 *
 * stb_image has an SSE2 path (the IDCT, YCbCr to RGB, 2x2 chroma upsampling) and a NEON
 * one, but none for WebAssembly; both produce exactly the pixels of its scalar code. Each
 * function here has SSE2's semantics, lane for lane (shift counts and immediates as stb
 * uses them: constants below the lane width), so the decoded image is unchanged; only
 * faster. Used by classify.c, which defines STBI_SSE2 itself when __wasm_simd128__ is set.
 */
#ifndef SSE2_WASM_H
#define SSE2_WASM_H

#include <wasm_simd128.h>

typedef v128_t __m128i;

#define SSE2_WASM static inline __attribute__((always_inline))

SSE2_WASM __m128i _mm_setzero_si128(void) { return wasm_i32x4_splat(0); }
SSE2_WASM __m128i _mm_set1_epi8(char v) { return wasm_i8x16_splat(v); }
SSE2_WASM __m128i _mm_set1_epi16(short v) { return wasm_i16x8_splat(v); }
SSE2_WASM __m128i _mm_set1_epi32(int v) { return wasm_i32x4_splat(v); }
SSE2_WASM __m128i _mm_setr_epi16(short a, short b, short c, short d, short e, short f, short g,
                                 short h) {
    return wasm_i16x8_make(a, b, c, d, e, f, g, h);
}

SSE2_WASM __m128i _mm_load_si128(const __m128i *p) { return wasm_v128_load(p); }
SSE2_WASM __m128i _mm_loadl_epi64(const __m128i *p) { return wasm_v128_load64_zero(p); }
SSE2_WASM void _mm_storeu_si128(__m128i *p, __m128i a) { wasm_v128_store(p, a); }
SSE2_WASM void _mm_storel_epi64(__m128i *p, __m128i a) { wasm_v128_store64_lane(p, a, 0); }

SSE2_WASM __m128i _mm_add_epi16(__m128i a, __m128i b) { return wasm_i16x8_add(a, b); }
SSE2_WASM __m128i _mm_sub_epi16(__m128i a, __m128i b) { return wasm_i16x8_sub(a, b); }
SSE2_WASM __m128i _mm_add_epi32(__m128i a, __m128i b) { return wasm_i32x4_add(a, b); }
SSE2_WASM __m128i _mm_sub_epi32(__m128i a, __m128i b) { return wasm_i32x4_sub(a, b); }
SSE2_WASM __m128i _mm_xor_si128(__m128i a, __m128i b) { return wasm_v128_xor(a, b); }

/* pmaddwd: adjacent signed 16-bit products summed into 32 bits (i32x4.dot_i16x8_s). */
SSE2_WASM __m128i _mm_madd_epi16(__m128i a, __m128i b) { return wasm_i32x4_dot_i16x8(a, b); }

/* pmulhw: the high 16 bits of each signed 16x16-bit product. */
SSE2_WASM __m128i _mm_mulhi_epi16(__m128i a, __m128i b) {
    __m128i lo = wasm_i32x4_extmul_low_i16x8(a, b), hi = wasm_i32x4_extmul_high_i16x8(a, b);
    return wasm_i16x8_shuffle(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
}

/* Saturating packs: signed 32 to signed 16, signed 16 to unsigned 8. */
SSE2_WASM __m128i _mm_packs_epi32(__m128i a, __m128i b) { return wasm_i16x8_narrow_i32x4(a, b); }
SSE2_WASM __m128i _mm_packus_epi16(__m128i a, __m128i b) { return wasm_u8x16_narrow_i16x8(a, b); }

SSE2_WASM __m128i _mm_slli_epi16(__m128i a, int n) { return wasm_i16x8_shl(a, n); }
SSE2_WASM __m128i _mm_srai_epi16(__m128i a, int n) { return wasm_i16x8_shr(a, n); }
SSE2_WASM __m128i _mm_srli_epi16(__m128i a, int n) { return wasm_u16x8_shr(a, n); }
SSE2_WASM __m128i _mm_srai_epi32(__m128i a, int n) { return wasm_i32x4_shr(a, n); }

SSE2_WASM __m128i _mm_unpacklo_epi8(__m128i a, __m128i b) {
    return wasm_i8x16_shuffle(a, b, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
}
SSE2_WASM __m128i _mm_unpackhi_epi8(__m128i a, __m128i b) {
    return wasm_i8x16_shuffle(a, b, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
}
SSE2_WASM __m128i _mm_unpacklo_epi16(__m128i a, __m128i b) {
    return wasm_i16x8_shuffle(a, b, 0, 8, 1, 9, 2, 10, 3, 11);
}
SSE2_WASM __m128i _mm_unpackhi_epi16(__m128i a, __m128i b) {
    return wasm_i16x8_shuffle(a, b, 4, 12, 5, 13, 6, 14, 7, 15);
}

/* Immediate operands: macros, since wasm's shuffles and lane indices must be constants. */
#define _mm_shuffle_epi32(a, imm)                                                             \
    wasm_i32x4_shuffle((a), (a), (imm) & 3, ((imm) >> 2) & 3, ((imm) >> 4) & 3, ((imm) >> 6) & 3)
#define _mm_insert_epi16(a, v, lane) wasm_i16x8_replace_lane((a), (lane), (short)(v))
/* Byte shifts of the whole register, zeros shifted in (lanes 0-15 of the zero vector). */
#define _mm_slli_si128(a, n)                                                                  \
    wasm_i8x16_shuffle(wasm_i32x4_splat(0), (a), 16 - (n), 17 - (n), 18 - (n), 19 - (n),      \
                       20 - (n), 21 - (n), 22 - (n), 23 - (n), 24 - (n), 25 - (n), 26 - (n),  \
                       27 - (n), 28 - (n), 29 - (n), 30 - (n), 31 - (n))
#define _mm_srli_si128(a, n)                                                                  \
    wasm_i8x16_shuffle((a), wasm_i32x4_splat(0), (n), 1 + (n), 2 + (n), 3 + (n), 4 + (n),     \
                       5 + (n), 6 + (n), 7 + (n), 8 + (n), 9 + (n), 10 + (n), 11 + (n),       \
                       12 + (n), 13 + (n), 14 + (n), 15 + (n))

#endif
