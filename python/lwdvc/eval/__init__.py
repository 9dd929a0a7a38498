"""Rate-distortion evaluation of video codecs and decoder cost (MACs, parameters, latency).

Public API:
    GopSettings(gop, frames)                        test conditions
    code_sequence(codec, sequence, rate, settings)  per-frame bpp / PSNR / PSNR-Y / MS-SSIM
    rd_curve(codec, sequences, rates, settings)     one averaged point per rate index
    bd_metrics(anchor_points, test_points)          BD-rate / BD-PSNR (RGB and Y)
    decoder_cost(model, height, width)              decoder MACs, parameters, median latency
    evaluate_models({label: codec}, ...)            all of the above as one report dict
    optimize_codec(codec, dtype)                    copy with an optimised (fused, bf16) P-frame decoder
    write_report(report, out_dir)                   JSON + Markdown + RD plot PNG
"""
from lwdvc.eval.cost import count_parameters, decoder_cost, decoder_latency, decoder_macs_live
from lwdvc.eval.optimized import DTYPES, optimize_codec
from lwdvc.eval.rd import bd_metrics, curve_arrays, rd_curve
from lwdvc.eval.report import evaluate_models, machine_info, markdown_report, write_report
from lwdvc.eval.sequence import GopSettings, code_sequence, msssim_weights_for

__all__ = ["DTYPES", "GopSettings", "bd_metrics", "code_sequence", "count_parameters", "curve_arrays", "decoder_cost",
           "decoder_latency", "decoder_macs_live", "evaluate_models", "machine_info", "markdown_report",
           "msssim_weights_for", "optimize_codec", "rd_curve", "write_report"]
