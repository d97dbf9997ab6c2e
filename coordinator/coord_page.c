/* The run page as one self-contained HTML document: coordinator/page/
 * (page.html, page.js, page.css) and uPlot (third_party/uplot), embedded
 * in the binary at build time (page_assets.c, generated). The live page and
 * `herd report` are the same document; only the data differ: `null` makes
 * the page poll /timeline and /status, an object is a finished run.
 */
#include <stdlib.h>
#include <string.h>

#include "coord_internal.h"

extern const char herd_asset_page_html[], herd_asset_page_js[],
    herd_asset_page_css[], herd_asset_uplot_js[], herd_asset_uplot_css[];

static const char *s_asset(const char *name, size_t len, const char *data)
{
  static const struct {
    const char *name, *text;
  } assets[] = {{"page_js", herd_asset_page_js},
                {"page_css", herd_asset_page_css},
                {"uplot_js", herd_asset_uplot_js},
                {"uplot_css", herd_asset_uplot_css}};
  if (len == 4 && !memcmp(name, "data", 4))
    return data;
  for (size_t i = 0; i < sizeof assets / sizeof assets[0]; i++)
    if (strlen(assets[i].name) == len && !memcmp(assets[i].name, name, len))
      return assets[i].text;
  return NULL;
}

char *coord_page_render(const char *data_json)
{
  static const char open[] = "/*@", close[] = "@*/";
  const char *data = data_json ? data_json : "null";
  const char *tpl = herd_asset_page_html;
  size_t cap = strlen(tpl) + strlen(data) + strlen(herd_asset_page_js) +
               strlen(herd_asset_page_css) + strlen(herd_asset_uplot_js) +
               strlen(herd_asset_uplot_css) + 1;
  char *out = malloc(cap), *at = out;
  if (!out)
    return NULL;
  const char *p = tpl;
  for (;;) {
    const char *mark = strstr(p, open);
    const char *end = mark ? strstr(mark + 3, close) : NULL;
    const char *value = end ? s_asset(mark + 3, (size_t)(end - mark - 3), data)
                            : NULL;
    if (!mark || !end) {
      size_t rest = strlen(p);
      memcpy(at, p, rest + 1);
      return out;
    }
    memcpy(at, p, (size_t)(mark - p));
    at += mark - p;
    if (value) { /* each placeholder appears once: cap holds */
      size_t n = strlen(value);
      memcpy(at, value, n);
      at += n;
    }
    p = end + 3;
  }
}
