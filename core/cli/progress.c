/* SPDX-License-Identifier: Apache-2.0 */
/* Download progress display: a bar redrawn at most ten times a second on a terminal, a line per
 * 10% (or per 10 MiB when the total is unknown) when the output is a file or pipe. */
#include "progress.h"

#include <stdlib.h>
#include <time.h>

struct molt_progress {
    FILE *out;
    bool tty;
    bool drawn;
    double start;
    double last_draw;
    int64_t last_step;     /* the last 10% step (or 10 MiB step) printed */
    int64_t bytes;
    int64_t total;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

molt_progress *molt_progress_new(FILE *out, bool tty)
{
    molt_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out = out;
    p->tty = tty;
    p->start = now_s();
    p->last_step = -1;
    return p;
}

/* "12.3 MiB" */
static void human(char *buf, size_t size, double v)
{
    const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (v >= 1024.0 && u < 4) {
        v /= 1024.0;
        u++;
    }
    if (u == 0)
        snprintf(buf, size, "%.0f %s", v, units[u]);
    else
        snprintf(buf, size, "%.1f %s", v, units[u]);
}

static void draw_bar(molt_progress *p, double t, bool final)
{
    char done[32], total[32], rate[32], eta[32] = "--:--";
    double elapsed = t - p->start;
    double bps = elapsed > 0.05 ? (double)p->bytes / elapsed : 0;
    human(done, sizeof done, (double)p->bytes);
    human(rate, sizeof rate, bps);
    int width = 30, filled = 0, pct = -1;
    if (p->total > 0) {
        human(total, sizeof total, (double)p->total);
        pct = (int)(p->bytes * 100 / p->total);
        filled = (int)(p->bytes * width / p->total);
        if (bps > 0 && p->bytes <= p->total) {
            long left = (long)((double)(p->total - p->bytes) / bps + 0.5);
            snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
        }
    }
    char bar[64];
    for (int i = 0; i < width; i++)
        bar[i] = i < filled ? '#' : (p->total > 0 ? '.' : ' ');
    bar[width] = '\0';
    if (pct >= 0)
        fprintf(p->out, "\r[%s] %3d%%  %s / %s  %s/s  ETA %s\033[K", bar, pct, done, total, rate,
                eta);
    else
        fprintf(p->out, "\r%s  %s/s\033[K", done, rate);
    if (final)
        fputc('\n', p->out);
    fflush(p->out);
    p->drawn = !final;
    p->last_draw = t;
}

void molt_progress_update(void *ctx, int64_t bytes, int64_t total)
{
    molt_progress *p = ctx;
    if (!p)
        return;
    p->bytes = bytes;
    p->total = total;
    if (p->tty) {
        double t = now_s();
        if (t - p->last_draw >= 0.1 || (total > 0 && bytes >= total))
            draw_bar(p, t, false);
        return;
    }
    int64_t step = total > 0 ? bytes * 10 / total : bytes / (10 << 20);
    if (step == p->last_step)
        return;
    p->last_step = step;
    char done[32], all[32];
    human(done, sizeof done, (double)bytes);
    if (total > 0) {
        human(all, sizeof all, (double)total);
        fprintf(p->out, "Downloading: %3d%% (%s of %s)\n", (int)(step * 10), done, all);
    } else {
        fprintf(p->out, "Downloading: %s\n", done);
    }
    fflush(p->out);
}

void molt_progress_free(molt_progress *p)
{
    if (!p)
        return;
    if (p->tty && p->drawn)
        draw_bar(p, now_s(), true);
    free(p);
}
