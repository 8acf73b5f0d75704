/*
 * classify.c - the image service's classify function as a WebAssembly program.
 *
 * A WASI preview1 command: reads a JPEG or PNG on stdin, writes
 *     <label> is detected with N/255 confidence
 * on stdout, the inference done by the host through wasi-nn (wasi_ephemeral_nn):
 * the model is the one named `classifier` in serverless.yml's `wasm.models`, loaded
 * once by faasbox and shared by every instance; the labels are read from the
 * preopened folder /model.
 *
 * The preprocessing is the Python classify function's (examples/image-service/
 * classify.py), step for step, so both answer the same top-1:
 *   1. decode to RGB(X) (stb_image, its SSE2 kernels on wasm SIMD: sse2_wasm.h;
 *      libjpeg-turbo decodes a JPEG a level or two apart on some pixels);
 *   2. resize the shorter side to the model's 224 (the other rounded as
 *      (long * 224 + short / 2) / short) with Pillow 13's BILINEAR resampling exactly:
 *      its triangle filter widened by the downscale factor, coefficients in 22-bit
 *      fixed point, two passes in Pillow's order, 8-bit between them (Pillow,
 *      src/libImaging/Resample.c, re-implemented here);
 *   3. crop the centre 224x224 (steps 2 and 3 compute only the crop's pixels);
 *   4. x = (v - 127) / 128 as float32, NCHW [1, 3, 224, 224];
 * then softmax over the 1000 logits; N = round(p * 255) (half to even, as Python).
 * Not done: EXIF orientation (Pillow's exif_transpose) and GIF/WebP input.
 *
 * Exit codes: 0 success; 1 invalid input (the reason on stderr); 2 resources or
 * the model (out of memory, a wasi-nn errno, no labels).
 *
 * Build: ./build.sh (clang --target=wasm32-wasi; deterministic).
 */

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_INPUT_BYTES (32u * 1024u * 1024u)
#define MAX_PIXELS 25000000ull /* as the Python function's MAX_IMAGE_PIXELS */
#define SIZE 224
#define CLASSES 1000
#define MODEL_NAME "classifier"
#define LABELS_PATH "/model/imagenet_labels.txt"

#define EXIT_INVALID_INPUT 1
#define EXIT_RESOURCES 2

/* stb_image's SSE2 JPEG kernels (the same pixels as its scalar code), on wasm SIMD. */
#ifdef __wasm_simd128__
#include "sse2_wasm.h"
#define STBI_SSE2
static int stbi__sse2_available(void) { return 1; }
#endif
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_THREAD_LOCALS
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS (1 << 20)
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

/* -- wasi-nn (the witx ABI of wasi_ephemeral_nn) ---------------------------- */

typedef uint32_t nn_errno;
typedef struct { uint32_t *dims; uint32_t rank; uint8_t type; uint8_t *data; uint32_t len; } nn_tensor;
enum { NN_TENSOR_F32 = 1 };

#define NN_IMPORT(name) __attribute__((import_module("wasi_ephemeral_nn"), import_name(name)))
NN_IMPORT("load_by_name") nn_errno nn_load_by_name(const char *name, uint32_t len, uint32_t *graph);
NN_IMPORT("init_execution_context") nn_errno nn_init_execution_context(uint32_t graph, uint32_t *ctx);
NN_IMPORT("set_input") nn_errno nn_set_input(uint32_t ctx, uint32_t index, const nn_tensor *tensor);
NN_IMPORT("compute") nn_errno nn_compute(uint32_t ctx);
NN_IMPORT("get_output") nn_errno nn_get_output(uint32_t ctx, uint32_t index, uint8_t *buf,
                                               uint32_t max, uint32_t *written);

static int fail(int code, const char *what, const char *detail) {
    if (detail != NULL)
        fprintf(stderr, "classify: %s: %s\n", what, detail);
    else
        fprintf(stderr, "classify: %s\n", what);
    return code;
}

static int nn_fail(const char *call, nn_errno e) {
    fprintf(stderr, "classify: wasi-nn %s failed: errno %u\n", call, (unsigned)e);
    return EXIT_RESOURCES;
}

/* Reads all of stdin into a malloc'd buffer. Returns 0, or an exit code. */
static int read_stdin(unsigned char **out, size_t *out_len) {
    size_t cap = 64 * 1024, len = 0;
    unsigned char *buf = malloc(cap);
    if (buf == NULL) return fail(EXIT_RESOURCES, "out of memory reading the input", NULL);
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_INPUT_BYTES) {
                free(buf);
                return fail(EXIT_INVALID_INPUT, "input too large", "the request body is over 32 MiB");
            }
            size_t ncap = cap * 2 > MAX_INPUT_BYTES ? MAX_INPUT_BYTES : cap * 2;
            unsigned char *nbuf = realloc(buf, ncap);
            if (nbuf == NULL) {
                free(buf);
                return fail(EXIT_RESOURCES, "out of memory reading the input", NULL);
            }
            buf = nbuf;
            cap = ncap;
        }
        size_t n = fread(buf + len, 1, cap - len, stdin);
        len += n;
        if (n == 0) {
            if (ferror(stdin)) {
                free(buf);
                return fail(EXIT_RESOURCES, "cannot read stdin", NULL);
            }
            break;
        }
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/* -- Pillow's BILINEAR resize (Resample.c), RGB, 8 bits per channel --------- */

#define PRECISION_BITS (32 - 8 - 2)

static double triangle(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

/* Per output index: the first input index, how many, and ksize fixed-point weights. */
typedef struct { int ksize; int *bounds; int32_t *k; } coeffs;

static int precompute(int in_size, int out_size, coeffs *c) {
    double scale = (double)in_size / out_size, filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale;
    int ksize = (int)ceil(support) * 2 + 1;
    double *w = malloc(sizeof(double) * ksize);
    c->ksize = ksize;
    c->bounds = malloc(sizeof(int) * 2 * out_size);
    c->k = malloc(sizeof(int32_t) * ksize * out_size);
    if (w == NULL || c->bounds == NULL || c->k == NULL) {
        free(w);
        return -1;
    }
    for (int xx = 0; xx < out_size; xx++) {
        double center = (xx + 0.5) * scale, ww = 0.0, ss = 1.0 / filterscale;
        int xmin = (int)(center - support + 0.5), xmax = (int)(center + support + 0.5);
        if (xmin < 0) xmin = 0;
        if (xmax > in_size) xmax = in_size;
        xmax -= xmin;
        for (int x = 0; x < xmax; x++) {
            w[x] = triangle((x + xmin - center + 0.5) * ss);
            ww += w[x];
        }
        for (int x = 0; x < ksize; x++) {
            double v = x < xmax && ww != 0.0 ? w[x] / ww : 0.0;
            c->k[xx * ksize + x] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS)
                                                   : 0.5 + v * (1 << PRECISION_BITS));
        }
        c->bounds[2 * xx] = xmin;
        c->bounds[2 * xx + 1] = xmax;
    }
    free(w);
    return 0;
}

static uint8_t clip8(int32_t v) {
    v >>= PRECISION_BITS;
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)v;
}

/* One horizontal pass over `rows` rows of RGBX pixels (4 bytes, `stride` bytes a row):
 * output columns x0 .. x0 + count - 1, to `dst` in RGB (count * 3 bytes a row). With wasm
 * SIMD, each output pixel is written as 4 bytes whose last is overwritten by the next
 * pixel's, so `dst` must have a byte to spare after its last row. */
static void horizontal(const uint8_t *src, size_t stride, int rows, const coeffs *c, int x0,
                       int count, uint8_t *dst) {
    for (int y = 0; y < rows; y++, src += stride) {
        uint8_t *q = dst + (size_t)y * count * 3;
        for (int x = 0; x < count; x++) {
            int xmin = c->bounds[2 * (x + x0)], n = c->bounds[2 * (x + x0) + 1];
            const int32_t *k = c->k + (x + x0) * c->ksize;
            const uint8_t *p = src + xmin * 4;
#ifdef __wasm_simd128__
            /* A pixel's 4 bytes in one vector: the same integer sums, 4 lanes at a time.
             * Four taps per loop turn where there are four: wasmtime checks its epoch at
             * every loop turn, and this loop runs about five turns per output pixel. */
            v128_t acc = wasm_i32x4_splat(1 << (PRECISION_BITS - 1));
            int i = 0;
            for (; i + 4 <= n; i += 4) {
                v128_t px = wasm_v128_load(p + i * 4);
                v128_t lo = wasm_u16x8_extend_low_u8x16(px), hi = wasm_u16x8_extend_high_u8x16(px);
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(lo),
                                                         wasm_i32x4_splat(k[i])));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(lo),
                                                         wasm_i32x4_splat(k[i + 1])));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(wasm_u32x4_extend_low_u16x8(hi),
                                                         wasm_i32x4_splat(k[i + 2])));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(wasm_u32x4_extend_high_u16x8(hi),
                                                         wasm_i32x4_splat(k[i + 3])));
            }
            for (; i < n; i++) {
                v128_t px = wasm_u32x4_extend_low_u16x8(
                    wasm_u16x8_extend_low_u8x16(wasm_v128_load32_zero(p + i * 4)));
                acc = wasm_i32x4_add(acc, wasm_i32x4_mul(px, wasm_i32x4_splat(k[i])));
            }
            /* clip8 of each lane: the shift, then two saturating narrowings (to 0..255) */
            v128_t v = wasm_i32x4_shr(acc, PRECISION_BITS);
            v = wasm_i16x8_narrow_i32x4(v, v);
            wasm_v128_store32_lane(q + x * 3, wasm_u8x16_narrow_i16x8(v, v), 0);
#else
            int32_t s[3];
            s[0] = s[1] = s[2] = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < n; i++)
                for (int ch = 0; ch < 3; ch++) s[ch] += p[i * 4 + ch] * k[i];
            for (int ch = 0; ch < 3; ch++) q[x * 3 + ch] = clip8(s[ch]);
#endif
        }
    }
}

/* One vertical pass: output rows y0 .. y0 + count - 1, each `bytes` bytes (channels are
 * independent here), from `src` (`stride` bytes a row, its row 0 being input row `first`)
 * to `dst` (`bytes` a row). Taps outermost, so the inner loops run along contiguous bytes
 * and are vectorised. */
static void vertical(const uint8_t *src, size_t stride, int first, size_t bytes,
                     const coeffs *c, int y0, int count, uint8_t *dst) {
    enum { CHUNK = 2048 };
    int32_t acc[CHUNK];
    for (int y = 0; y < count; y++) {
        int ymin = c->bounds[2 * (y + y0)] - first, n = c->bounds[2 * (y + y0) + 1];
        const int32_t *k = c->k + (y + y0) * c->ksize;
        for (size_t j0 = 0; j0 < bytes; j0 += CHUNK) {
            size_t len = bytes - j0 < CHUNK ? bytes - j0 : CHUNK;
            for (size_t j = 0; j < len; j++) acc[j] = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < n; i++) {
                const uint8_t *row = src + (size_t)(ymin + i) * stride + j0;
                int32_t ki = k[i];
                for (size_t j = 0; j < len; j++) acc[j] += row[j] * ki;
            }
            uint8_t *q = dst + (size_t)y * bytes + j0;
            for (size_t j = 0; j < len; j++) q[j] = clip8(acc[j]);
        }
    }
}

/* The centre crop (SIZE x SIZE at left, top) of the w x h RGBX image resized to ow x oh as
 * Pillow 13 does it, into `crop` (SIZE x SIZE RGB). Only the crop is computed: each output
 * pixel depends only on its own row's and column's taps, so the bytes are those of resizing
 * the whole image and cropping after. Pillow runs the vertical pass first when the height
 * shrinks by more than twice as many pixels as the width (Resample.c,
 * ImagingResampleInner), else the horizontal one; the order changes the rounding between
 * the passes, so it is followed. Returns 0, or -1 out of memory. */
static int resize_crop(const uint8_t *in, int w, int h, int ow, int oh, int left, int top,
                       uint8_t *crop) {
    coeffs hc = {0}, vc = {0};
    int rc = -1;
    uint8_t *tmp = NULL;
    if (precompute(w, ow, &hc) || precompute(h, oh, &vc)) goto done;
    if (!(h - oh > 0 && h - oh > (w - ow) * 2)) {
        /* horizontal first, over the input rows the crop's rows read */
        int first = vc.bounds[2 * top];
        int last = vc.bounds[2 * (top + SIZE - 1)] + vc.bounds[2 * (top + SIZE - 1) + 1];
        tmp = malloc((size_t)(last - first) * SIZE * 3 + 1); /* + 1: horizontal() */
        if (tmp == NULL) goto done;
        horizontal(in + (size_t)first * w * 4, (size_t)w * 4, last - first, &hc, left, SIZE,
                   tmp);
        vertical(tmp, (size_t)SIZE * 3, first, (size_t)SIZE * 3, &vc, top, SIZE, crop);
    } else {
        /* vertical first, over the input columns the crop's columns read */
        int first = hc.bounds[2 * left];
        int last = hc.bounds[2 * (left + SIZE - 1)] + hc.bounds[2 * (left + SIZE - 1) + 1];
        size_t bytes = (size_t)(last - first) * 4;
        tmp = malloc(bytes * SIZE);
        if (tmp == NULL) goto done;
        vertical(in + (size_t)first * 4, (size_t)w * 4, 0, bytes, &vc, top, SIZE, tmp);
        for (int x = left; x < left + SIZE; x++) hc.bounds[2 * x] -= first;
        horizontal(tmp, bytes, SIZE, &hc, left, SIZE, crop);
    }
    rc = 0;
done:
    free(tmp);
    free(hc.bounds);
    free(hc.k);
    free(vc.bounds);
    free(vc.k);
    return rc;
}

/* -- labels ------------------------------------------------------------------ */

/* The short name of class `index` (up to its first ", ") into `out`. The file is read in
 * one fread: each WASI read of a file is a round trip to a host thread, and line by line
 * (1 KB stdio buffers) that cost a millisecond. */
static int label_of(int index, char *out, size_t cap) {
    static char text[1 << 18]; /* the labels are 22 KB; a longer file's tail is not read */
    FILE *f = fopen(LABELS_PATH, "r");
    if (f == NULL) return fail(EXIT_RESOURCES, "cannot open " LABELS_PATH, "is wasm.dirs [model] set?");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = 0;
    char *line = text;
    for (int i = 0; i < index && line != NULL; i++) {
        line = strchr(line, '\n');
        if (line != NULL) line++;
    }
    if (line == NULL || *line == 0)
        return fail(EXIT_RESOURCES, "the labels file has too few lines", LABELS_PATH);
    size_t len = strcspn(line, "\r\n");
    char *comma = strstr(line, ", ");
    if (comma != NULL && (size_t)(comma - line) < len) len = (size_t)(comma - line);
    snprintf(out, cap, "%.*s", (int)len, line);
    return 0;
}

/* -- the model's input -------------------------------------------------------- */

/* x = (v - 127) / 128 (exactly: a division by a power of two), HWC RGB to CHW planes. With
 * wasm SIMD four pixels at a time (the same float operations per lane); `crop` must have
 * 4 bytes to spare after its last pixel. */
static void normalise(const uint8_t *crop, float *out) {
    int i = 0;
#ifdef __wasm_simd128__
    const v128_t offset = wasm_f32x4_splat(127.0f), scale = wasm_f32x4_splat(1.0f / 128.0f);
    for (; i + 4 <= SIZE * SIZE; i += 4) {
        v128_t px = wasm_v128_load(crop + i * 3); /* 4 RGB pixels, and 4 bytes after */
        v128_t planes = wasm_i8x16_shuffle(px, px, 0, 3, 6, 9, 1, 4, 7, 10, 2, 5, 8, 11,
                                           0, 0, 0, 0);
        v128_t lo = wasm_u16x8_extend_low_u8x16(planes), hi = wasm_u16x8_extend_high_u8x16(planes);
        v128_t r = wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(lo));
        v128_t g = wasm_f32x4_convert_u32x4(wasm_u32x4_extend_high_u16x8(lo));
        v128_t b = wasm_f32x4_convert_u32x4(wasm_u32x4_extend_low_u16x8(hi));
        wasm_v128_store(out + i, wasm_f32x4_mul(wasm_f32x4_sub(r, offset), scale));
        wasm_v128_store(out + SIZE * SIZE + i, wasm_f32x4_mul(wasm_f32x4_sub(g, offset), scale));
        wasm_v128_store(out + 2 * SIZE * SIZE + i,
                        wasm_f32x4_mul(wasm_f32x4_sub(b, offset), scale));
    }
#endif
    for (; i < SIZE * SIZE; i++)
        for (int c = 0; c < 3; c++)
            out[c * SIZE * SIZE + i] = ((float)crop[i * 3 + c] - 127.0f) * (1.0f / 128.0f);
}

/* -- main -------------------------------------------------------------------- */

static float logits[CLASSES];

int main(void) {
    unsigned char *data;
    size_t len;
    int rc = read_stdin(&data, &len);
    if (rc) return rc;
    if (len == 0)
        return fail(EXIT_INVALID_INPUT, "the body is empty",
                    "POST the image itself (curl --data-binary @photo.jpg)");
    int w, h, channels;
    if (!stbi_info_from_memory(data, (int)len, &w, &h, &channels))
        return fail(EXIT_INVALID_INPUT, "the body is not a JPEG or PNG image", stbi_failure_reason());
    if ((unsigned long long)w * h > MAX_PIXELS)
        return fail(EXIT_INVALID_INPUT, "the image is too large", "over 25 megapixels");
    /* RGBX, 4 bytes a pixel: stb_image's SIMD YCbCr conversion only writes 4 (its 3-byte
     * output is scalar), and 4-byte pixels load as one vector in the resize. */
    uint8_t *rgb = stbi_load_from_memory(data, (int)len, &w, &h, &channels, 4);
    free(data);
    if (rgb == NULL)
        return fail(EXIT_INVALID_INPUT, "the image is truncated or corrupt", stbi_failure_reason());

    /* Shorter side to SIZE, as classify.py's preprocess rounds it. */
    int nw, nh;
    if (w <= h) {
        nw = SIZE;
        nh = (int)(((long long)h * SIZE + w / 2) / w);
    } else {
        nw = (int)(((long long)w * SIZE + h / 2) / h);
        nh = SIZE;
    }
    if (nw < SIZE) nw = SIZE; /* a 1-pixel-thin image still gives a full crop */
    if (nh < SIZE) nh = SIZE;
    static uint8_t crop[SIZE * SIZE * 3 + 16]; /* + 16: horizontal() and normalise() */
    if (resize_crop(rgb, w, h, nw, nh, (nw - SIZE) / 2, (nh - SIZE) / 2, crop))
        return fail(EXIT_RESOURCES, "out of memory resizing the image", NULL);
    stbi_image_free(rgb);
    /* Allocated after the image is freed, so it takes the image's pages: memory first
     * touched in a fresh instance costs a page fault per 4 KB (about 150 for this tensor). */
    float *input = malloc(sizeof(float) * 3 * SIZE * SIZE);
    if (input == NULL) return fail(EXIT_RESOURCES, "out of memory for the model's input", NULL);
    normalise(crop, input);

    uint32_t graph, ctx, written;
    uint32_t dims[4] = {1, 3, SIZE, SIZE};
    nn_tensor tensor = {dims, 4, NN_TENSOR_F32, (uint8_t *)input, sizeof(float) * 3 * SIZE * SIZE};
    nn_errno e;
    if ((e = nn_load_by_name(MODEL_NAME, strlen(MODEL_NAME), &graph))) return nn_fail("load_by_name", e);
    if ((e = nn_init_execution_context(graph, &ctx))) return nn_fail("init_execution_context", e);
    if ((e = nn_set_input(ctx, 0, &tensor))) return nn_fail("set_input", e);
    if ((e = nn_compute(ctx))) return nn_fail("compute", e);
    if ((e = nn_get_output(ctx, 0, (uint8_t *)logits, sizeof logits, &written)))
        return nn_fail("get_output", e);
    if (written != sizeof logits)
        return fail(EXIT_RESOURCES, "the model does not have 1000 classes", NULL);

    /* Softmax in double, as classify.py; the first of equal maxima wins (a stable sort). */
    int best = 0;
    double max = logits[0], sum = 0.0;
    for (int i = 1; i < CLASSES; i++)
        if (logits[i] > max) max = logits[i];
    for (int i = 0; i < CLASSES; i++) {
        sum += exp((double)logits[i] - max);
        if (logits[i] > logits[best]) best = i;
    }
    double p = exp((double)logits[best] - max) / sum;
    char label[256];
    if ((rc = label_of(best, label, sizeof label))) return rc;
    printf("%s is detected with %ld/255 confidence", label, lrint(p * 255.0));
    return fflush(stdout) == 0 ? 0 : fail(EXIT_RESOURCES, "cannot write stdout", NULL);
}
