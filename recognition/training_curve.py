"""Training history (loss, accuracy, verification accuracy against batches) kept as JSON and drawn as a PNG."""
import json
import os

from common.checkpoint import atomic_write


class TrainingHistory:
    """Collects what the Speedometer and the verification print, and redraws the curve on save()."""

    def __init__(self, run_dir):
        self.json_path = os.path.join(run_dir, 'training_history.json')
        self.png_path = os.path.join(run_dir, 'training_curve.png')
        self.metrics = {}        # name -> [(batch, value)]
        self.verification = {}   # target -> [(batch, accuracy)]

    def add_metrics(self, batch, name_values):
        for name, value in name_values:
            self.metrics.setdefault(name, []).append((batch, float(value)))

    def add_verification(self, batch, target, accuracy):
        self.verification.setdefault(target, []).append((batch, float(accuracy)))

    def state(self):
        return {'metrics': self.metrics, 'verification': self.verification}

    def restore(self, state):
        self.metrics = {k: [tuple(p) for p in v] for k, v in state.get('metrics', {}).items()}
        self.verification = {k: [tuple(p) for p in v] for k, v in state.get('verification', {}).items()}

    def save(self):
        """Write the JSON and the PNG (each atomically); returns the PNG path."""
        atomic_write(self.json_path, lambda tmp: _write_json(tmp, self.state()))
        atomic_write(self.png_path, self._draw)
        return self.png_path

    def _draw(self, path):
        # The object API of matplotlib with the Agg canvas: no pyplot, no display, no global state.
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(9, 4.5), dpi=100)
        FigureCanvasAgg(figure)
        loss_axes, acc_axes = figure.subplots(1, 2)
        for name, points in self.metrics.items():
            if name == 'acc':
                continue
            loss_axes.plot(*zip(*points), label=name)
        loss_axes.set_title('training loss')
        loss_axes.set_xlabel('batch')
        if 'acc' in self.metrics:
            acc_axes.plot(*zip(*self.metrics['acc']), label='train acc (with margin)', color='0.6')
        for target, points in self.verification.items():
            acc_axes.plot(*zip(*points), marker='o', label='%s verification' % target)
        acc_axes.set_title('accuracy')
        acc_axes.set_xlabel('batch')
        acc_axes.set_ylim(0, 1.02)
        for axes in (loss_axes, acc_axes):
            axes.grid(alpha=0.3)
            if axes.get_legend_handles_labels()[0]:
                axes.legend(loc='best', fontsize='small')
        figure.tight_layout()
        figure.savefig(path, format='png')


def _write_json(path, data):
    with open(path, 'w') as fout:
        json.dump(data, fout)
