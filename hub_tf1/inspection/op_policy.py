"""The one list of op types that reach outside the graph, with the reason.

Rules of this file:
* Every entry names an op registered in TensorFlow (`tf.raw_ops`) and says
  what it can touch: files, network, processes, the environment, or Python.
* Only this file decides what `scan` flags; `scan.py` decides where.
"""

from typing import Dict

_FILE_READ = "reads files named by a tensor"
_FILE_WRITE = "writes files named by a tensor"
_PYTHON = "runs arbitrary Python code of the loading process"
_DATASET = "a tf.data source that reads files or external stores"
_READER = "a TF1 queue reader that reads files"
_SUMMARY = "a summary writer that creates and writes event files"
_DEBUG = "debugger op that can write tensors to files or gRPC endpoints"
_NETWORK = "sends or receives tensors over the network"

_GROUPS = {
    _FILE_READ: ["ReadFile", "MatchingFiles", "ImmutableConst",
                 "InitializeTableFromTextFile", "InitializeTableFromTextFileV2",
                 "Restore", "RestoreV2", "RestoreSlice", "LoadAndRemapMatrix",
                 "GenerateVocabRemapping", "LoadDataset"],
    _FILE_WRITE: ["WriteFile", "Save", "SaveV2", "SaveSlices",
                  "MergeV2Checkpoints", "PrintV2", "SaveDataset",
                  "SaveDatasetV2", "DistributedSave", "DatasetToTFRecord",
                  "ExperimentalDatasetToTFRecord", "SnapshotDataset",
                  "SnapshotDatasetV2", "SnapshotDatasetReader",
                  "SnapshotNestedDatasetReader", "SnapshotChunkDataset",
                  "CacheDataset", "CacheDatasetV2", "FileSystemSetConfiguration"],
    _PYTHON: ["PyFunc", "PyFuncStateless", "EagerPyFunc", "GeneratorDataset"],
    _DATASET: ["TFRecordDataset", "TFRecordDatasetV2", "TextLineDataset",
               "FixedLengthRecordDataset", "FixedLengthRecordDatasetV2",
               "CSVDataset", "ExperimentalCSVDataset", "CSVDatasetV2",
               "LMDBDataset", "ExperimentalLMDBDataset", "SqlDataset",
               "ExperimentalSqlDataset", "MatchingFilesDataset",
               "ExperimentalMatchingFilesDataset", "DataServiceDataset",
               "DataServiceDatasetV2", "DataServiceDatasetV3",
               "DataServiceDatasetV4", "RegisterDataset", "RegisterDatasetV2"],
    _READER: ["WholeFileReader", "WholeFileReaderV2", "TextLineReader",
              "TextLineReaderV2", "TFRecordReader", "TFRecordReaderV2",
              "FixedLengthRecordReader", "FixedLengthRecordReaderV2",
              "LMDBReader", "RecordInput"],
    _SUMMARY: ["CreateSummaryFileWriter", "CreateSummaryDbWriter",
               "SummaryWriter", "WriteSummary", "WriteScalarSummary",
               "WriteHistogramSummary", "WriteImageSummary",
               "WriteAudioSummary", "WriteGraphSummary",
               "WriteRawProtoSummary", "FlushSummaryWriter",
               "CloseSummaryWriter", "ImportEvent"],
    _DEBUG: ["DebugIdentity", "DebugIdentityV2", "DebugIdentityV3",
             "DebugNanCount", "DebugNumericSummary", "DebugNumericSummaryV2"],
    _NETWORK: ["_Send", "_Recv", "_HostSend", "_HostRecv", "Send", "Recv",
               "CollectiveBcastSend", "CollectiveBcastRecv",
               "CollectiveBcastSendV2", "CollectiveBcastRecvV2"],
}

# op type -> why it is flagged.
FLAGGED_OPS: Dict[str, str] = {
    op: reason for reason, ops in _GROUPS.items() for op in ops}

# Ops that look like I/O but are not flagged, with the reason (kept here so
# the decision is documented next to the list; nothing reads it to scan).
NOT_FLAGGED: Dict[str, str] = {
    # tf.compat.v1.Print: attrs are only message/first_n/summarize; the
    # kernel writes to the process's stderr and cannot name a file, socket
    # or process.  Ordinary modules carry it for debugging.  PrintV2 stays
    # flagged: its `output_stream` attr may be "file://PATH".
    "Print": "logs tensors to the process's stderr only",
}

# Ops that ordinary modules use on their own files, allowed when the file
# name comes straight from an asset tensor (see scan.py).
ASSET_READERS = frozenset(["InitializeTableFromTextFile",
                           "InitializeTableFromTextFileV2"])

# Ops of a SaverDef's save/restore sub-graph, allowed when reached only from
# the SaverDef's own save or restore op.
SAVER_OPS = frozenset(["Save", "SaveV2", "SaveSlices", "MergeV2Checkpoints",
                       "Restore", "RestoreV2", "RestoreSlice"])
