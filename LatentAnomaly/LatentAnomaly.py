"""Latent Anomaly: unsupervised anomaly detection in brain MRI, as a 3D Slicer module.

The module runs ``LatentAnomalyLib``'s command line in a separate PythonSlicer process (torch is
never imported into Slicer's GUI process) and shows the heatmap and label map it writes. Widget,
logic and parameter node live in ``LatentAnomalyGUI/``; importing them here puts
``LatentAnomalyWidget`` and ``LatentAnomalyLogic`` in this file's namespace, where Slicer looks.
"""

import logging
import os
from pathlib import Path

import numpy as np
import slicer
from LatentAnomalyGUI.library_path import ensure_library_importable
from slicer.ScriptedLoadableModule import ScriptedLoadableModule, ScriptedLoadableModuleTest

ensure_library_importable(Path(__file__).resolve().parent)  # a source checkout keeps LatentAnomalyLib one level up

from LatentAnomalyGUI.logic import DetectParameters, LatentAnomalyLogic  # noqa: E402
from LatentAnomalyGUI.selftest import find_sample_scan, geometry_mismatches  # noqa: E402
from LatentAnomalyGUI.widget import LatentAnomalyWidget  # noqa: E402

__all__ = ["LatentAnomaly", "LatentAnomalyLogic", "LatentAnomalyTest", "LatentAnomalyWidget"]


class LatentAnomaly(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "Latent Anomaly"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["LatentAnomaly developers"]
        self.parent.helpText = """
Flags regions of a T1-weighted brain MRI that look unlike the healthy scans the model was trained on.
<ul>
<li><b>Heatmap</b>: anomaly score per voxel (0 outside the brain), not a probability nor a segmentation.</li>
<li><b>Subject p-value</b>: the scan against healthy calibration scans; flagged when p &le; alpha (0.05). At most
alpha of healthy scans like the calibration scans are flagged (not promised for other scanners, protocols, ages).</li>
<li><b>Label map</b>: the regions above the calibrated <b>voxel threshold</b> the model's rule keeps (every region of
a flagged scan, none otherwise), each with its p-value in the regions table. The slider re-thresholds the heatmap
without running the model again (regions found that way have no p-value).</li>
</ul>
Detection runs in a separate process (Cancel stops it); the first run offers to install PyTorch and other
Python packages. <b>Research software, not a medical device: not for diagnosis or treatment decisions.</b>
"""
        self.parent.acknowledgementText = """
Default model trained on the IXI dataset (brain-development.org, CC BY-SA 3.0).
Registration template: ICBM 2009a nonlinear symmetric (McConnell Brain Imaging Centre, Montreal
Neurological Institute; Fonov et al., NeuroImage 2011). Built with MONAI and PyTorch.
"""


class LatentAnomalyTest(ScriptedLoadableModuleTest):
    """Real CLI on the sample scan; checks geometry, re-thresholding, regions, metrics, opacity (needs the packages)."""

    def setUp(self):
        slicer.mrmlScene.Clear()

    def runTest(self):
        self.setUp()
        self.test_DetectOnSample()

    def test_DetectOnSample(self):
        sample = find_sample_scan(Path(__file__).resolve().parent)
        if sample is None:
            self._skip(
                "sample scan Testing/Data/IXI_sample_T1.nii.gz not found beside the module source; "
                "set LATENT_ANOMALY_SAMPLE to its path (it cannot be downloaded)"
            )
            return
        logic = LatentAnomalyLogic(slicer.mrmlScene, slicer.app.applicationLogic())
        missing = logic.missingDependencies()
        if missing:
            self._skip(f"Python packages missing ({', '.join(missing)}); press Detect once to install them")
            return
        self.delayDisplay(f"Detecting anomalies in {sample}")
        inputVolume = slicer.util.loadVolume(str(sample))
        outcome = logic.detectAndWait(
            inputVolume,
            DetectParameters(device="cpu"),
            timeout=float(os.environ.get("LATENT_ANOMALY_TEST_TIMEOUT", 1800)),
        )
        self.assertTrue(outcome.succeeded, outcome.errorMessage + "\n" + outcome.log)
        self.assertTrue(outcome.heatmapNode is not None and outcome.labelNode is not None)
        expected = logic.volumeGeometry(inputVolume)
        for node in (outcome.heatmapNode, outcome.labelNode):
            self.assertEqual(geometry_mismatches(expected, logic.volumeGeometry(node)), [], node.GetName())
        values = set(np.unique(slicer.util.arrayFromVolume(outcome.labelNode)).tolist())
        self.assertTrue(values <= {0, 1}, f"label values {sorted(values)}")
        self.assertIn("subject_score", outcome.summary)
        self.assertTrue(outcome.summary["model"]["name"])
        self._checkReviewTools(logic, outcome)
        logic.cleanup()
        self.delayDisplay("Test passed")

    def _checkReviewTools(self, logic, outcome):
        """What the threshold slider, the regions table and the ground-truth box call, on the real results."""
        heat, label = outcome.heatmapNode, outcome.labelNode
        detected = float(outcome.summary["voxel_threshold"])
        before = int(np.count_nonzero(slicer.util.arrayFromVolume(label)))
        self.assertEqual(len(logic.review.regionRows(label, outcome.summary)), outcome.summary["n_components"])
        peak = float(slicer.util.arrayFromVolume(heat).max())
        higher = logic.review.rethreshold(heat, label, detected + 0.5 * max(peak - detected, 1e-3))
        self.assertLessEqual(int(np.count_nonzero(slicer.util.arrayFromVolume(label))), before)
        self.assertEqual(higher["detected_voxel_threshold"], detected)
        self.assertEqual(len(logic.review.regionRows(label, higher)), higher["n_components"])
        logic.review.rethreshold(heat, label, detected)
        self.assertEqual(int(np.count_nonzero(slicer.util.arrayFromVolume(label))), before)
        metrics = logic.review.compareWithGroundTruth(heat, label, label)  # the label map against itself
        self.assertAlmostEqual(metrics["dice"], 1.0)
        shown = logic.display.setHeatmapOpacity(heat, 0.8)
        self.assertTrue(shown > 0 or slicer.app.layoutManager() is None)  # no slice views in a window-less run
        composites = slicer.util.getNodesByClass("vtkMRMLSliceCompositeNode")
        for composite in [c for c in composites if c.GetForegroundVolumeID() == heat.GetID()]:
            self.assertAlmostEqual(composite.GetForegroundOpacity(), 0.8)

    def _skip(self, reason):
        logging.warning(f"LatentAnomalyTest SKIPPED: {reason}")
        self.delayDisplay(f"Test skipped: {reason}")
