"""The harness that runs the analytic model and the simulator on the same scenarios,
compares them metric by metric, explains the differences and guards model accuracy.
It also hosts the ``metronome`` command line, since it is the one package allowed to
import both engines."""
