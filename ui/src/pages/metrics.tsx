import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { api, type Series, type SeriesPoint } from '../api.js';
import { ErrorLine, usePoll } from '../components.js';

const WINDOWS = [15, 60] as const;

export function MetricsPage() {
  const [minutes, setMinutes] = useState<number>(15);
  const [tool, setTool] = useState('*');
  const { value, error } = usePoll(() => api<Series>(`/series?minutes=${minutes}`), 10_000, [minutes]);
  const points: SeriesPoint[] | undefined = value && (tool === '*' ? value.all : value.tools[tool]);
  const names = Object.keys(value?.tools ?? {});

  return (
    <section>
      <div class="filters">
        <label>
          Tool{' '}
          <select value={tool} onChange={(e) => setTool(e.currentTarget.value)}>
            <option value="*">all tools</option>
            {names.map((n) => (
              <option key={n} value={n}>
                {n}
              </option>
            ))}
          </select>
        </label>
        <label>
          Window{' '}
          <select value={minutes} onChange={(e) => setMinutes(Number(e.currentTarget.value))}>
            {WINDOWS.map((w) => (
              <option key={w} value={w}>
                last {w} minutes
              </option>
            ))}
          </select>
        </label>
      </div>
      <ErrorLine error={error} />
      {points && (
        <div class="charts">
          <Chart
            title="Calls per bucket"
            points={points}
            series={[
              { label: 'calls', value: (p) => p.calls, stroke: '#2457a6' },
              { label: 'errors', value: (p) => p.errors, stroke: '#b3261e' },
              { label: 'denied', value: (p) => p.denied, stroke: '#a86b00' },
            ]}
          />
          <Chart
            title="Latency (ms)"
            points={points}
            series={[
              { label: 'p50', value: (p) => p.p50, stroke: '#2e7d32', dots: true },
              { label: 'p99', value: (p) => p.p99, stroke: '#6a1b9a', dots: true },
            ]}
          />
        </div>
      )}
      {value && (
        <table class="summary">
          <caption>
            Over the last {minutes} minutes ({value.bucketSeconds} s buckets; percentiles from a sample of
            each bucket)
          </caption>
          <thead>
            <tr>
              <th scope="col">Tool</th>
              <th scope="col">Calls</th>
              <th scope="col">Errors</th>
              <th scope="col">Denied</th>
              <th scope="col">p50 ms</th>
              <th scope="col">p99 ms</th>
            </tr>
          </thead>
          <tbody>
            {Object.entries(value.summary).map(([name, s]) => (
              <tr key={name} data-tool={name}>
                <th scope="row">{name === '*' ? 'all tools' : <code>{name}</code>}</th>
                <td>{s.calls}</td>
                <td>{s.errors}</td>
                <td>{s.denied}</td>
                <td>{s.p50 ?? '–'}</td>
                <td>{s.p99 ?? '–'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

interface Line {
  label: string;
  value: (p: SeriesPoint) => number | null;
  stroke: string;
  /** Draw each point: latency has gaps (no calls, no percentile), and a lone bucket has no line. */
  dots?: boolean;
}

function Chart({ title, points, series }: { title: string; points: SeriesPoint[]; series: Line[] }) {
  const box = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | undefined>(undefined);
  const data: uPlot.AlignedData = [points.map((p) => p.t / 1000), ...series.map((s) => points.map(s.value))];

  useEffect(() => {
    if (!box.current) return;
    plot.current = new uPlot(
      {
        title,
        width: Math.max(320, box.current.clientWidth),
        height: 220,
        series: [
          {},
          ...series.map((s) => ({
            label: s.label,
            stroke: s.stroke,
            width: 2,
            spanGaps: false,
            ...(s.dots ? { points: { show: true, size: 6, fill: s.stroke } } : {}),
          })),
        ],
        axes: [{}, { size: 50 }],
      },
      data,
      box.current,
    );
    return () => plot.current?.destroy();
  }, [title, series.length]);

  useEffect(() => {
    plot.current?.setData(data);
  });

  return <figure class="chart" ref={box} aria-label={title} />;
}
