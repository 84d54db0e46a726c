// Colours for the results map from the server's classes: quantile classes over the real range, a
// diverging scheme around the midpoint for support share, suppressed areas in their own grey.

// ColorBrewer-style, colour-blind safe: sequential blues; diverging orange (below the midpoint) to purple (above).
const SEQUENTIAL = ["#eff3ff", "#bdd7e7", "#6baed6", "#3182bd", "#08519c"];
const BELOW = ["#b35806", "#e08214", "#fdb863", "#fee0b6"];
const ABOVE = ["#d8daeb", "#b2abd2", "#8073ac", "#542788"];
export const SUPPRESSED = "#bbbbbb";

/** Per class colours for one metric's classes (from /results/map `classes`). */
export function classColours(classes) {
  const n = Math.max(0, (classes.breaks || []).length - 1);
  if (classes.scheme !== "diverging" || classes.midpoint === null) return SEQUENTIAL.slice(SEQUENTIAL.length - n).slice(0, n);
  const colours = [];
  const below = [];
  const above = [];
  for (let i = 0; i < n; i++) (classes.breaks[i + 1] <= classes.midpoint ? below : above).push(i);
  below.forEach((_, k) => colours.push(BELOW[BELOW.length - below.length + k] || BELOW[0]));
  above.forEach((_, k) => colours.push(ABOVE[k] || ABOVE[ABOVE.length - 1]));
  return colours;
}

/** {fill(properties), legend: [[lo, hi, colour]]} for a metric of a results map response. */
export function mapStyle(mapData, metric) {
  const classes = (mapData.classes || {})[metric] || { breaks: [], scheme: "sequential", midpoint: null };
  const colours = classColours(classes);
  const fill = (p) => {
    const k = p[`${metric}_class`];
    return k === null || k === undefined ? SUPPRESSED : colours[k];
  };
  const legend = colours.map((c, i) => [classes.breaks[i], classes.breaks[i + 1], c]);
  return { fill, legend, classes };
}

/** The tooltip text lines of an area: its figure and the count behind it, or that it is suppressed. */
export function tooltipLines(p, metric, format, threshold) {
  const lines = [p.name];
  if (p[metric] === null || p[metric] === undefined) lines.push(`suppressed: fewer than ${threshold} ${metric === "support_share" ? "respondents" : "doors"}`);
  else lines.push(`${format(p[metric])} (from ${Number(p[`${metric}_count`] || 0).toLocaleString("en-GB")} ${metric === "support_share" ? "respondents" : "doors knocked"})`);
  return lines;
}
