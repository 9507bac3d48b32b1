// What the charts chunk holds: only the charts the pages draw (so the rest of the library is
// left out of the build).
export { BarChart, LineChart, Sparkline } from "@mantine/charts";
