// Writes .dvc/plots_page.html, the page `dvc plots show` and `dvc plots diff` fill: tools/plots_page.html with
// Vega, Vega-Lite and Vega-Embed inlined from node_modules, so the page is one file that draws offline wherever it
// is opened. `npm ci` runs this after installing them. The page is named in .dvc/config.local (DVC's
// plots.html_template, this clone only), so a clone without it keeps DVC's own page instead of failing.
const fs = require("fs");
const path = require("path");

const root = path.join(__dirname, "..");
const libraries = ["vega/build/vega.min.js", "vega-lite/build/vega-lite.min.js", "vega-embed/build/vega-embed.min.js"];
const scripts = libraries.map((file) => {
  const code = fs.readFileSync(path.join(root, "node_modules", file), "utf8");
  // DVC fills the page with str.replace: a placeholder inside a library would be filled too.
  if (/\{(plot_divs|scripts|refresh_tag)\}/.test(code)) throw new Error(`${file} contains a DVC placeholder`);
  return `<script type="text/javascript">/* ${file} */\n${code.replace(/<\/script/gi, "<\\/script")}\n</script>`;
});
const template = fs.readFileSync(path.join(__dirname, "plots_page.html"), "utf8");
const page = template.replace("<!-- offline-scripts -->", () => scripts.join("\n"));
const target = path.join(root, ".dvc", "plots_page.html");
fs.writeFileSync(target + ".tmp", page);
fs.renameSync(target + ".tmp", target);

const local = path.join(root, ".dvc", "config.local");
let config = fs.existsSync(local) ? fs.readFileSync(local, "utf8") : "";
if (!/^\s*html_template\s*=/m.test(config)) {
  const setting = "    html_template = plots_page.html\n";
  config = /^\[plots\]\s*$/m.test(config)
    ? config.replace(/^\[plots\]\s*$\n?/m, (section) => section.replace(/\n?$/, "\n") + setting)
    : config + (config && !config.endsWith("\n") ? "\n" : "") + "[plots]\n" + setting;
  fs.writeFileSync(local, config);
}
console.log(`wrote ${path.relative(root, target)} (${Math.round(page.length / 1024)} KiB, plots draw offline)`);
