#!/bin/sh
# Renders the paper page in headless Chromium at 1 280 px and fails when the page scrolls
# sideways or an image does not load; writes a screenshot of the top of the page.
#
#   scripts/check_page.sh [out/paper/index.html] [screenshot.png]
#
# Needs Debian's chromium-headless-shell (apt-get install chromium-headless-shell). The page
# itself has no script: a copy with a checking script appended is rendered beside it (so its
# relative links resolve the same way) and removed afterwards.
set -eu

page=${1:-out/paper/index.html}
shot=${2:-$(dirname "$page")/check_page.png}
width=1280
browser=$(command -v chromium-headless-shell || command -v chromium || true)
if [ -z "$browser" ]; then
    echo "check_page: chromium-headless-shell not found (apt-get install chromium-headless-shell)" >&2
    exit 2
fi
if [ ! -f "$page" ]; then
    echo "check_page: $page: no such file (run \`vqsim paper\` first)" >&2
    exit 2
fi

dir=$(cd "$(dirname "$page")" && pwd)
probe="$dir/.check_page.html"
trap 'rm -f "$probe"' EXIT INT TERM

# Lazy images only load when scrolled to: make every image eager, wait for all of them, then
# write the verdict into the page for --dump-dom to print.
sed -e '/<\/body>/d' -e '/<\/html>/d' "$page" >"$probe"
cat >>"$probe" <<'EOF'
<script>
window.addEventListener("load", () => {
  const imgs = [...document.images];
  imgs.forEach(i => { i.loading = "eager"; });
  Promise.all(imgs.map(i => i.complete ? null : new Promise(r => { i.onload = i.onerror = r; })))
    .then(() => {
      const doc = document.documentElement;
      const lines = [];
      if (doc.scrollWidth > doc.clientWidth) {
        lines.push("overflow: page is " + doc.scrollWidth + " px wide in a " + doc.clientWidth + " px window");
        const clipped = e => { for (let p = e.parentElement; p; p = p.parentElement) {
          if (getComputedStyle(p).overflowX !== "visible") return true; } return false; };
        [...document.body.querySelectorAll("*")]
          .filter(e => e.getBoundingClientRect().right > doc.clientWidth + 1 && !clipped(e))
          .slice(0, 5)
          .forEach(e => lines.push("  wide: <" + e.tagName.toLowerCase() + (e.id ? " id=" + e.id : "") + "> " + Math.round(e.getBoundingClientRect().width) + " px: " + e.textContent.trim().slice(0, 60)));
      }
      imgs.filter(i => !(i.complete && i.naturalWidth > 0))
        .forEach(i => lines.push("broken image: " + i.getAttribute("src")));
      const out = document.createElement("pre");
      out.id = "check-page";
      out.textContent = "CHECKED " + imgs.length + " images\n" + lines.join("\n");
      document.body.appendChild(out);
    });
});
</script>
</body>
</html>
EOF

dom=$("$browser" --headless --no-sandbox --disable-gpu --allow-file-access-from-files \
    --window-size=$width,900 --virtual-time-budget=60000 --dump-dom "file://$probe" 2>/dev/null)
report=$(printf '%s\n' "$dom" | sed -n '/<pre id="check-page">/,/<\/pre>/p' |
    sed 's#<pre id="check-page">##; s#</pre>.*##; s#&lt;#<#g; s#&gt;#>#g; s#&amp;#\&#g')
if [ -z "$report" ]; then
    echo "check_page: the page did not finish loading in the browser" >&2
    exit 1
fi
"$browser" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=$width,2400 \
    --screenshot="$shot" "file://$dir/$(basename "$page")" >/dev/null 2>&1 || true

printf '%s\n' "$report"
echo "screenshot (top 2400 px): $shot"
if printf '%s\n' "$report" | grep -q -e '^overflow:' -e '^broken image:'; then
    echo "check_page: FAILED" >&2
    exit 1
fi
echo "check_page: ok"
