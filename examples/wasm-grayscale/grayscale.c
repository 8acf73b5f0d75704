/*
 * grayscale.c - faasbox's WebAssembly example function.
 *
 * A WASI preview1 command: reads a JPEG, PNG or GIF (the first frame of an
 * animated GIF) on stdin, writes it back as an 8-bit grayscale PNG on stdout.
 *
 * I/O contract of faasbox's `wasm` runtime:
 *   stdin   the request body (raw bytes)
 *   stdout  the response body (raw bytes; Content-Type from `wasm.contentType`)
 *   stderr  the function's log
 *   exit    0 = success. Any other exit code makes the invocation fail: the
 *           platform reports it as a `Runtime.ExitError` (with the stderr tail),
 *           just as Lambda does for a runtime that exits.
 *           Here 1 = invalid input (empty, not an image, truncated, too big),
 *                2 = resources (out of memory, cannot write stdout).
 *
 * Gray levels are Pillow's `Image.convert("L")` exactly: ITU-R 601-2 luma in
 * 16-bit fixed point with rounding (Pillow, src/libImaging/Convert.c):
 *     L24(rgb) = rgb[0]*19595 + rgb[1]*38470 + rgb[2]*7471 + 0x8000;  L = L24 >> 16
 * Alpha is ignored, as convert("L") ignores it. The weights sum to 65536, so a
 * pixel that is already gray keeps its level. PNG and GIF output is Pillow's
 * exactly (for a GIF, where the first frame draws nothing we show what Pillow
 * shows: see gif_scan). JPEG output can be a level or two off on a few pixels:
 * stb_image's IDCT and chroma upsampling are not libjpeg-turbo's.
 * One deliberate difference: a 16-bit grayscale PNG is scaled to 8 bits (v >> 8);
 * Pillow opens it as mode I;16 and convert("L") clips it to 255 instead.
 *
 * Memory is bounded: the input is capped (MAX_INPUT_BYTES), the dimensions are
 * read from the header with stbi_info_from_memory and checked against
 * MAX_PIXELS before anything is decoded (no decompression bombs), the image is
 * decoded with its native channel count, and the gray plane is written in place
 * over the decoded pixels. Peak is about input + pixels*channels + the PNG
 * encoder's buffers (~2 bytes/pixel). The platform's memorySize caps the
 * module's linear memory on top of that; an allocation failure exits 2.
 *
 * Build: ./build.sh (clang --target=wasm32-wasi; deterministic).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32 /* only for a native Windows build; WASI stdio has no text mode */
#include <fcntl.h>
#include <io.h>
#endif

#define MAX_INPUT_BYTES (32u * 1024u * 1024u) /* > the 6 MB sync payload limit */
#define MAX_PIXELS 50000000ull                 /* 50 megapixels */

#define EXIT_INVALID_INPUT 1
#define EXIT_RESOURCES 2

/* stb_image(_write) allocate through these, so that an allocation failure is
 * known even where stb reports none (or a stale reason, e.g. its PNG inflater). */
static int out_of_memory = 0;

static void *xmalloc(size_t n) {
    void *p = malloc(n);
    if (p == NULL) out_of_memory = 1;
    return p;
}

static void *xrealloc(void *q, size_t n) {
    void *p = realloc(q, n);
    if (p == NULL) out_of_memory = 1;
    return p;
}

#define STBI_MALLOC(n) xmalloc(n)
#define STBI_REALLOC(p, n) xrealloc(p, n)
#define STBI_FREE(p) free(p)
#define STBIW_MALLOC(n) xmalloc(n)
#define STBIW_REALLOC(p, n) xrealloc(p, n)
#define STBIW_FREE(p) free(p)

/* stb_image: only the three formats we accept, from memory only, no threads
 * (wasm32-wasi has none), human-readable failure reasons. */
#define STBI_ONLY_JPEG
#define STBI_ONLY_PNG
#define STBI_ONLY_GIF
#define STBI_NO_STDIO
#define STBI_NO_LINEAR
#define STBI_NO_HDR
#define STBI_NO_THREAD_LOCALS
#define STBI_FAILURE_USERMSG
#define STBI_MAX_DIMENSIONS (1 << 20)
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>

#define STBI_WRITE_NO_STDIO
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>

static int fail(int code, const char *what, const char *detail) {
    if (detail != NULL)
        fprintf(stderr, "grayscale: %s: %s\n", what, detail);
    else
        fprintf(stderr, "grayscale: %s\n", what);
    return code;
}

/* Reads all of stdin into a malloc'd buffer. Returns 0, or an exit code. */
static int read_stdin(unsigned char **out, size_t *out_len) {
    size_t cap = 64 * 1024, len = 0;
    unsigned char *buf = malloc(cap);
    if (buf == NULL)
        return fail(EXIT_RESOURCES, "out of memory reading the input", NULL);
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_INPUT_BYTES) {
                free(buf);
                return fail(EXIT_INVALID_INPUT, "input too large",
                            "the request body is over 32 MiB");
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
            break; /* EOF */
        }
    }
    *out = buf;
    *out_len = len;
    return 0;
}

/*
 * stb_image decodes a cut-off JPEG or GIF "successfully" (the missing part
 * comes out flat), so check that the data needed for the first image is all
 * there. (A cut-off PNG is already an error in stb_image.)
 * Returns NULL if complete, else the reason.
 */
static const char *jpeg_truncated(const unsigned char *p, size_t n) {
    size_t i = 2; /* after SOI (FF D8) */
    /* Walk the marker segments up to the first SOS. */
    for (;;) {
        while (i < n && p[i] != 0xFF) i++;      /* tolerate junk between segments */
        while (i < n && p[i] == 0xFF) i++;      /* fill bytes */
        if (i >= n) return "the JPEG ends before its image data";
        unsigned char m = p[i++];
        if (m == 0xD9) return "the JPEG has no image data";
        if (m == 0x01 || (m >= 0xD0 && m <= 0xD7)) continue; /* no length */
        if (i + 2 > n) return "the JPEG ends inside a header";
        size_t seglen = ((size_t)p[i] << 8) | p[i + 1];
        if (seglen < 2 || i + seglen > n) return "the JPEG ends inside a header";
        i += seglen;
        if (m == 0xDA) break; /* SOS: entropy-coded data follows */
    }
    /* Entropy-coded data never contains FF D9 (FF is stuffed as FF 00), so the
     * first FF D9 after the first SOS is the end of the image. */
    for (; i + 1 < n; i++)
        if (p[i] == 0xFF && p[i + 1] == 0xD9) return NULL;
    return "the JPEG is truncated (no end-of-image marker)";
}

static const char *gif_skip_sub_blocks(const unsigned char *p, size_t n, size_t *i) {
    for (;;) {
        if (*i >= n) return "the GIF is truncated";
        size_t len = p[(*i)++];
        if (len == 0) return NULL;
        if (*i + len > n) return "the GIF is truncated";
        *i += len;
    }
}

/* What Pillow shows where the first frame of a GIF draws nothing (outside the
 * frame's rectangle, or a transparent pixel): palette index `transparency` if the
 * frame has one, else index 0, from the frame's palette (local, else global).
 * stb_image shows transparent black or the background color there instead. */
struct gif_first_frame {
    unsigned left, top, width, height; /* the frame's rectangle on the screen */
    unsigned char fill;                /* gray level of the undrawn pixels */
};

static unsigned char luma(const unsigned char *rgb) {
    return (unsigned char)(((uint32_t)rgb[0] * 19595u + (uint32_t)rgb[1] * 38470u +
                            (uint32_t)rgb[2] * 7471u + 0x8000u) >> 16);
}

/* Walks the GIF up to the end of its first frame's data. Returns NULL if it is
 * all there (and fills *ff), else the reason. */
static const char *gif_scan(const unsigned char *p, size_t n, struct gif_first_frame *ff) {
    if (n < 13) return "the GIF is truncated";
    size_t i = 13; /* signature (6) + logical screen descriptor (7) */
    const unsigned char *table = NULL;
    size_t entries = 0;
    if (p[10] & 0x80) { /* global color table */
        entries = 2u << (p[10] & 7);
        table = p + i;
        i += 3 * entries;
    }
    int transparency = -1;
    for (;;) {
        if (i >= n) return "the GIF is truncated";
        unsigned char b = p[i++];
        if (b == 0x21) { /* extension: label, then sub-blocks */
            if (i + 1 > n) return "the GIF is truncated";
            unsigned char label = p[i++];
            /* graphic control extension: 04 flags delay(2) index 00 */
            if (label == 0xF9 && i + 5 <= n && p[i] >= 4)
                transparency = (p[i + 1] & 1) ? p[i + 4] : -1;
            const char *e = gif_skip_sub_blocks(p, n, &i);
            if (e) return e;
        } else if (b == 0x2C) { /* image descriptor: the first frame */
            if (i + 9 > n) return "the GIF is truncated";
            ff->left = p[i] | (unsigned)p[i + 1] << 8;
            ff->top = p[i + 2] | (unsigned)p[i + 3] << 8;
            ff->width = p[i + 4] | (unsigned)p[i + 5] << 8;
            ff->height = p[i + 6] | (unsigned)p[i + 7] << 8;
            unsigned char flags = p[i + 8];
            i += 9;
            if (flags & 0x80) { /* local color table */
                entries = 2u << (flags & 7);
                table = p + i;
                i += 3 * entries;
            }
            if (i > n) return "the GIF is truncated";
            size_t k = transparency >= 0 ? (size_t)transparency : 0;
            ff->fill = (table != NULL && k < entries) ? luma(table + 3 * k) : 0;
            i++; /* LZW minimum code size */
            return gif_skip_sub_blocks(p, n, &i);
        } else {
            return "the GIF has no image";
        }
    }
}

static int write_stdout_failed = 0;

static void write_stdout(void *ctx, void *data, int size) {
    (void)ctx;
    if (size > 0 && fwrite(data, 1, (size_t)size, stdout) != (size_t)size)
        write_stdout_failed = 1;
}

int main(void) {
#ifdef _WIN32
    _setmode(_fileno(stdin), _O_BINARY);
    _setmode(_fileno(stdout), _O_BINARY);
#endif
    unsigned char *in = NULL;
    size_t in_len = 0;
    int rc = read_stdin(&in, &in_len);
    if (rc != 0) return rc;
    if (in_len == 0)
        return fail(EXIT_INVALID_INPUT, "empty input",
                    "send a JPEG, PNG or GIF image as the request body");

    /* Header only: dimensions before decoding anything. stbi_info refuses a
     * PNG over 1 GiB decoded but then reports "unknown type", so read a PNG's
     * IHDR (always the first chunk, at offset 16) here for a clear message. */
    uint64_t pw = 0, ph = 0;
    if (in_len >= 24 && memcmp(in, "\x89PNG\r\n\x1a\n", 8) == 0 && memcmp(in + 12, "IHDR", 4) == 0) {
        pw = ((uint64_t)in[16] << 24) | ((uint64_t)in[17] << 16) | ((uint64_t)in[18] << 8) | in[19];
        ph = ((uint64_t)in[20] << 24) | ((uint64_t)in[21] << 16) | ((uint64_t)in[22] << 8) | in[23];
    }
    int w = 0, h = 0, channels = 0;
    if (pw * ph <= MAX_PIXELS && !stbi_info_from_memory(in, (int)in_len, &w, &h, &channels))
        return fail(EXIT_INVALID_INPUT, "not a valid JPEG, PNG or GIF image",
                    stbi_failure_reason());
    if (pw * ph > MAX_PIXELS || (uint64_t)w * (uint64_t)h > MAX_PIXELS) {
        fprintf(stderr, "grayscale: image too large: %llux%llu is over the limit of %llu pixels\n",
                pw * ph > MAX_PIXELS ? (unsigned long long)pw : (unsigned long long)w,
                pw * ph > MAX_PIXELS ? (unsigned long long)ph : (unsigned long long)h,
                MAX_PIXELS);
        return EXIT_INVALID_INPUT;
    }
    if (w <= 0 || h <= 0)
        return fail(EXIT_INVALID_INPUT, "invalid image", "zero width or height");

    const char *cut = NULL;
    int is_gif = in_len >= 6 && memcmp(in, "GIF", 3) == 0;
    struct gif_first_frame ff = {0, 0, 0, 0, 0};
    if (in_len >= 2 && in[0] == 0xFF && in[1] == 0xD8)
        cut = jpeg_truncated(in, in_len);
    else if (is_gif)
        cut = gif_scan(in, in_len, &ff);
    if (cut != NULL) return fail(EXIT_INVALID_INPUT, "invalid image", cut);

    /* Decode with the native channel count: 1 (gray), 2 (gray+alpha),
     * 3 (RGB) or 4 (RGBA; palette PNGs and GIFs come out as RGB/RGBA). */
    int dw = 0, dh = 0, n = 0;
    stbi_uc *px = stbi_load_from_memory(in, (int)in_len, &dw, &dh, &n, 0);
    free(in);
    if (px == NULL) {
        if (out_of_memory)
            return fail(EXIT_RESOURCES, "out of memory decoding the image",
                        "raise the function's memorySize or send a smaller image");
        return fail(EXIT_INVALID_INPUT, "cannot decode the image", stbi_failure_reason());
    }
    if (dw != w || dh != h || n < 1 || n > 4) {
        stbi_image_free(px);
        return fail(EXIT_INVALID_INPUT, "invalid image", "inconsistent header");
    }

    /* To gray, in place: output pixel i is written at i <= n*i, after it is read. */
    size_t count = (size_t)w * (size_t)h;
    if (is_gif && n == 4) { /* stb_image gives a GIF's first frame as RGBA */
        for (size_t i = 0; i < count; i++) {
            const stbi_uc *rgba = px + i * 4;
            unsigned x = (unsigned)(i % (size_t)w), y = (unsigned)(i / (size_t)w);
            int drawn = x >= ff.left && x - ff.left < ff.width && y >= ff.top &&
                        y - ff.top < ff.height && rgba[3] != 0;
            px[i] = drawn ? luma(rgba) : ff.fill;
        }
    } else if (n >= 3) {
        for (size_t i = 0; i < count; i++) px[i] = luma(px + i * (size_t)n);
    } else if (n == 2) {
        for (size_t i = 0; i < count; i++) px[i] = px[2 * i]; /* drop alpha */
    }

    /* stbi_write_png_to_func encodes into memory, then calls write_stdout once. */
    int ok = stbi_write_png_to_func(write_stdout, NULL, w, h, 1, px, w);
    stbi_image_free(px);
    if (!ok)
        return fail(EXIT_RESOURCES, "out of memory encoding the PNG",
                    "raise the function's memorySize or send a smaller image");
    if (fflush(stdout) != 0 || write_stdout_failed)
        return fail(EXIT_RESOURCES, "cannot write stdout", NULL);
    return 0;
}
