'use strict';
// Prints compare_node.sh's table from the two JSON lines: mca-oauth's, then the Node SDK's.
//
//   node print_comparison.js MCA_OAUTH_JSON NODE_SDK_JSON CALLERS

const [mcaOauth, nodeSdk] = [JSON.parse(process.argv[2]), JSON.parse(process.argv[3])];
const callers = process.argv[4];

const rows = [
  // [what, field, format, which way is better]
  ['calls per second, warm (one caller, one tenant)', 'callsPerSecondWarm', (v) => v.toFixed(0), 'higher'],
  ['cold fetch latency, median (ms)', 'coldFetchMs', (v) => v.toFixed(3), 'lower'],
  [`token requests the server saw for ${callers} concurrent callers`, 'serverRequestsForCallers', String, 'lower'],
];

const table = [['figure', 'mca-oauth', 'Node SDK 3.0.5', 'mca-oauth advantage']];
for (const [what, field, show, better] of rows) {
  const ratio = better === 'higher' ? mcaOauth[field] / nodeSdk[field] : nodeSdk[field] / mcaOauth[field];
  table.push([what, show(mcaOauth[field]), show(nodeSdk[field]), `${ratio.toFixed(2)}x`]);
}
const widths = table[0].map((_, column) => Math.max(...table.map((row) => row[column].length)));
const line = (row) => `| ${row.map((cell, column) => cell.padEnd(widths[column])).join(' | ')} |`;
console.log(line(table[0]));
console.log(line(widths.map((width) => '-'.repeat(width))));
for (const row of table.slice(1)) console.log(line(row));
