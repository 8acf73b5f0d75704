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
 *   1. decode to RGB (stb_image; libjpeg-turbo decodes a JPEG a level or two apart
 *      on some pixels);
 *   2. resize the shorter side to the model's 224 (the other rounded as
 *      (long * 224 + short / 2) / short) with Pillow's BILINEAR resampling exactly:
 *      its triangle filter widened by the downscale factor, coefficients in 22-bit
 *      fixed point, a horizontal pass then a vertical one, 8-bit between them
 *      (Pillow, src/libImaging/Resample.c, re-implemented here);
 *   3. crop the centre 224x224;
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

/* in: w x h RGB; out: ow x oh RGB. Returns 0, or -1 out of memory. */
static int resize_bilinear(const uint8_t *in, int w, int h, uint8_t *out, int ow, int oh) {
    coeffs hc = {0}, vc = {0};
    int rc = -1;
    uint8_t *tmp = NULL;
    if (precompute(w, ow, &hc) || precompute(h, oh, &vc)) goto done;
    /* The horizontal pass covers only the rows the vertical one reads. */
    int first = vc.bounds[0], last = vc.bounds[2 * oh - 2] + vc.bounds[2 * oh - 1];
    int rows = last - first;
    tmp = malloc((size_t)ow * rows * 3);
    if (tmp == NULL) goto done;
    for (int y = 0; y < rows; y++) {
        const uint8_t *src = in + (size_t)(y + first) * w * 3;
        for (int xx = 0; xx < ow; xx++) {
            int xmin = hc.bounds[2 * xx], n = hc.bounds[2 * xx + 1];
            const int32_t *k = hc.k + xx * hc.ksize;
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int x = 0; x < n; x++) {
                const uint8_t *p = src + (x + xmin) * 3;
                s0 += p[0] * k[x];
                s1 += p[1] * k[x];
                s2 += p[2] * k[x];
            }
            uint8_t *q = tmp + ((size_t)y * ow + xx) * 3;
            q[0] = clip8(s0);
            q[1] = clip8(s1);
            q[2] = clip8(s2);
        }
    }
    for (int yy = 0; yy < oh; yy++) {
        int ymin = vc.bounds[2 * yy] - first, n = vc.bounds[2 * yy + 1];
        const int32_t *k = vc.k + yy * vc.ksize;
        for (int xx = 0; xx < ow; xx++) {
            int32_t s0 = 1 << (PRECISION_BITS - 1), s1 = s0, s2 = s0;
            for (int y = 0; y < n; y++) {
                const uint8_t *p = tmp + ((size_t)(y + ymin) * ow + xx) * 3;
                s0 += p[0] * k[y];
                s1 += p[1] * k[y];
                s2 += p[2] * k[y];
            }
            uint8_t *q = out + ((size_t)yy * ow + xx) * 3;
            q[0] = clip8(s0);
            q[1] = clip8(s1);
            q[2] = clip8(s2);
        }
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

/* The short name of class `index` (up to its first ", ") into `out`. */
static int label_of(int index, char *out, size_t cap) {
    FILE *f = fopen(LABELS_PATH, "r");
    if (f == NULL) return fail(EXIT_RESOURCES, "cannot open " LABELS_PATH, "is wasm.dirs [model] set?");
    char line[512];
    int i = 0, found = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        if (i++ != index) continue;
        line[strcspn(line, "\r\n")] = 0;
        char *comma = strstr(line, ", ");
        if (comma != NULL) *comma = 0;
        snprintf(out, cap, "%s", line);
        found = 1;
        break;
    }
    fclose(f);
    return found ? 0 : fail(EXIT_RESOURCES, "the labels file has too few lines", LABELS_PATH);
}

/* -- main -------------------------------------------------------------------- */

static float input[3 * SIZE * SIZE];
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
    uint8_t *rgb = stbi_load_from_memory(data, (int)len, &w, &h, &channels, 3);
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
    uint8_t *small = malloc((size_t)nw * nh * 3);
    if (small == NULL || resize_bilinear(rgb, w, h, small, nw, nh))
        return fail(EXIT_RESOURCES, "out of memory resizing the image", NULL);
    stbi_image_free(rgb);

    int left = (nw - SIZE) / 2, top = (nh - SIZE) / 2;
    for (int y = 0; y < SIZE; y++)
        for (int x = 0; x < SIZE; x++)
            for (int c = 0; c < 3; c++) {
                uint8_t v = small[((size_t)(y + top) * nw + (x + left)) * 3 + c];
                input[(c * SIZE + y) * SIZE + x] = ((float)v - 127.0f) / 128.0f;
            }
    free(small);

    uint32_t graph, ctx, written;
    uint32_t dims[4] = {1, 3, SIZE, SIZE};
    nn_tensor tensor = {dims, 4, NN_TENSOR_F32, (uint8_t *)input, sizeof input};
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
