"""The end-to-end Estimator demo of hub_tf1 (README: "The demo").

`python -m examples.estimator_demo [--local]` (what tools/run_demo.sh runs):
create_module_spec -> export -> hub_tf1.Module -> fine-tune with
tf.estimator.train_and_evaluate on a local parameter-server cluster ->
LatestModuleExporter -> reload the export.

* demo.py: the job and its flags;
* model.py: the demo's text module, synthetic data set and Estimator model
  (the tests use it too);
* trainer.py: the program every cluster task runs
  (`python -m examples.estimator_demo.trainer`).

Example code: it uses the library (hub_tf1, estimator_integration) and the
cluster launcher (tools/local_cluster.py); nothing in the library imports it.
"""
