from terse_client._proto.compress.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TokenToWord(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TOKEN_TO_WORD_MEAN_UNSPECIFIED: _ClassVar[TokenToWord]
    TOKEN_TO_WORD_FIRST: _ClassVar[TokenToWord]

class OutputText(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OUTPUT_TEXT_ORIGINAL_UNSPECIFIED: _ClassVar[OutputText]
    OUTPUT_TEXT_REFERENCE: _ClassVar[OutputText]

class PerplexityMethod(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PERPLEXITY_METHOD_UNSPECIFIED: _ClassVar[PerplexityMethod]
    PERPLEXITY_METHOD_LLMLINGUA: _ClassVar[PerplexityMethod]
    PERPLEXITY_METHOD_LONGLLMLINGUA: _ClassVar[PerplexityMethod]
    PERPLEXITY_METHOD_LONGCODEZIP: _ClassVar[PerplexityMethod]

class QuestionPosition(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    QUESTION_POSITION_UNSPECIFIED: _ClassVar[QuestionPosition]
    QUESTION_POSITION_NONE: _ClassVar[QuestionPosition]
    QUESTION_POSITION_BEFORE: _ClassVar[QuestionPosition]
    QUESTION_POSITION_AFTER: _ClassVar[QuestionPosition]

class ContextOrder(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTEXT_ORDER_UNSPECIFIED: _ClassVar[ContextOrder]
    CONTEXT_ORDER_ORIGINAL: _ClassVar[ContextOrder]
    CONTEXT_ORDER_SORT: _ClassVar[ContextOrder]
    CONTEXT_ORDER_TWO_STAGE: _ClassVar[ContextOrder]

class SelectionMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SELECTION_MODE_SENTENCE_UNSPECIFIED: _ClassVar[SelectionMode]
    SELECTION_MODE_CONTEXT_WINDOW: _ClassVar[SelectionMode]
TOKEN_TO_WORD_MEAN_UNSPECIFIED: TokenToWord
TOKEN_TO_WORD_FIRST: TokenToWord
OUTPUT_TEXT_ORIGINAL_UNSPECIFIED: OutputText
OUTPUT_TEXT_REFERENCE: OutputText
PERPLEXITY_METHOD_UNSPECIFIED: PerplexityMethod
PERPLEXITY_METHOD_LLMLINGUA: PerplexityMethod
PERPLEXITY_METHOD_LONGLLMLINGUA: PerplexityMethod
PERPLEXITY_METHOD_LONGCODEZIP: PerplexityMethod
QUESTION_POSITION_UNSPECIFIED: QuestionPosition
QUESTION_POSITION_NONE: QuestionPosition
QUESTION_POSITION_BEFORE: QuestionPosition
QUESTION_POSITION_AFTER: QuestionPosition
CONTEXT_ORDER_UNSPECIFIED: ContextOrder
CONTEXT_ORDER_ORIGINAL: ContextOrder
CONTEXT_ORDER_SORT: ContextOrder
CONTEXT_ORDER_TWO_STAGE: ContextOrder
SELECTION_MODE_SENTENCE_UNSPECIFIED: SelectionMode
SELECTION_MODE_CONTEXT_WINDOW: SelectionMode

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ContextModel(_message.Message):
    __slots__ = ("model", "kind", "description", "max_seq_len")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    MAX_SEQ_LEN_FIELD_NUMBER: _ClassVar[int]
    model: _common_pb2.ModelRef
    kind: str
    description: str
    max_seq_len: int
    def __init__(self, model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., kind: _Optional[str] = ..., description: _Optional[str] = ..., max_seq_len: _Optional[int] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ContextModel]
    def __init__(self, models: _Optional[_Iterable[_Union[ContextModel, _Mapping]]] = ...) -> None: ...

class PromptOptions(_message.Message):
    __slots__ = ("rate", "target_token", "use_context_level_filter", "use_token_level_filter", "target_context", "context_level_rate", "context_level_target_token", "force_context_ids", "return_word_label", "token_to_word", "force_tokens", "force_reserve_digit", "drop_consecutive", "chunk_end_tokens", "output", "reference_budget", "budget_tolerance")
    RATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TOKEN_FIELD_NUMBER: _ClassVar[int]
    USE_CONTEXT_LEVEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    USE_TOKEN_LEVEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    TARGET_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LEVEL_RATE_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_LEVEL_TARGET_TOKEN_FIELD_NUMBER: _ClassVar[int]
    FORCE_CONTEXT_IDS_FIELD_NUMBER: _ClassVar[int]
    RETURN_WORD_LABEL_FIELD_NUMBER: _ClassVar[int]
    TOKEN_TO_WORD_FIELD_NUMBER: _ClassVar[int]
    FORCE_TOKENS_FIELD_NUMBER: _ClassVar[int]
    FORCE_RESERVE_DIGIT_FIELD_NUMBER: _ClassVar[int]
    DROP_CONSECUTIVE_FIELD_NUMBER: _ClassVar[int]
    CHUNK_END_TOKENS_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_BUDGET_FIELD_NUMBER: _ClassVar[int]
    BUDGET_TOLERANCE_FIELD_NUMBER: _ClassVar[int]
    rate: float
    target_token: int
    use_context_level_filter: bool
    use_token_level_filter: bool
    target_context: int
    context_level_rate: float
    context_level_target_token: int
    force_context_ids: _containers.RepeatedScalarFieldContainer[int]
    return_word_label: bool
    token_to_word: TokenToWord
    force_tokens: _containers.RepeatedScalarFieldContainer[str]
    force_reserve_digit: bool
    drop_consecutive: bool
    chunk_end_tokens: _containers.RepeatedScalarFieldContainer[str]
    output: OutputText
    reference_budget: bool
    budget_tolerance: float
    def __init__(self, rate: _Optional[float] = ..., target_token: _Optional[int] = ..., use_context_level_filter: bool = ..., use_token_level_filter: bool = ..., target_context: _Optional[int] = ..., context_level_rate: _Optional[float] = ..., context_level_target_token: _Optional[int] = ..., force_context_ids: _Optional[_Iterable[int]] = ..., return_word_label: bool = ..., token_to_word: _Optional[_Union[TokenToWord, str]] = ..., force_tokens: _Optional[_Iterable[str]] = ..., force_reserve_digit: bool = ..., drop_consecutive: bool = ..., chunk_end_tokens: _Optional[_Iterable[str]] = ..., output: _Optional[_Union[OutputText, str]] = ..., reference_budget: bool = ..., budget_tolerance: _Optional[float] = ...) -> None: ...

class CompressPromptRequest(_message.Message):
    __slots__ = ("context", "options", "model", "perplexity")
    CONTEXT_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PERPLEXITY_FIELD_NUMBER: _ClassVar[int]
    context: _containers.RepeatedScalarFieldContainer[str]
    options: PromptOptions
    model: _common_pb2.ModelRef
    perplexity: PerplexityOptions
    def __init__(self, context: _Optional[_Iterable[str]] = ..., options: _Optional[_Union[PromptOptions, _Mapping]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., perplexity: _Optional[_Union[PerplexityOptions, _Mapping]] = ...) -> None: ...

class PerplexityOptions(_message.Message):
    __slots__ = ("method", "rate", "target_token", "instruction", "question", "iterative_size", "use_context_level_filter", "use_token_level_filter", "concate_question", "condition_in_question", "condition_compare", "reorder_context", "dynamic_context_compression_ratio", "context_budget", "language", "fine_ratio", "rank_only")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TOKEN_FIELD_NUMBER: _ClassVar[int]
    INSTRUCTION_FIELD_NUMBER: _ClassVar[int]
    QUESTION_FIELD_NUMBER: _ClassVar[int]
    ITERATIVE_SIZE_FIELD_NUMBER: _ClassVar[int]
    USE_CONTEXT_LEVEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    USE_TOKEN_LEVEL_FILTER_FIELD_NUMBER: _ClassVar[int]
    CONCATE_QUESTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_IN_QUESTION_FIELD_NUMBER: _ClassVar[int]
    CONDITION_COMPARE_FIELD_NUMBER: _ClassVar[int]
    REORDER_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    DYNAMIC_CONTEXT_COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_BUDGET_FIELD_NUMBER: _ClassVar[int]
    LANGUAGE_FIELD_NUMBER: _ClassVar[int]
    FINE_RATIO_FIELD_NUMBER: _ClassVar[int]
    RANK_ONLY_FIELD_NUMBER: _ClassVar[int]
    method: PerplexityMethod
    rate: float
    target_token: int
    instruction: str
    question: str
    iterative_size: int
    use_context_level_filter: bool
    use_token_level_filter: bool
    concate_question: bool
    condition_in_question: QuestionPosition
    condition_compare: bool
    reorder_context: ContextOrder
    dynamic_context_compression_ratio: float
    context_budget: float
    language: str
    fine_ratio: float
    rank_only: bool
    def __init__(self, method: _Optional[_Union[PerplexityMethod, str]] = ..., rate: _Optional[float] = ..., target_token: _Optional[int] = ..., instruction: _Optional[str] = ..., question: _Optional[str] = ..., iterative_size: _Optional[int] = ..., use_context_level_filter: bool = ..., use_token_level_filter: bool = ..., concate_question: bool = ..., condition_in_question: _Optional[_Union[QuestionPosition, str]] = ..., condition_compare: bool = ..., reorder_context: _Optional[_Union[ContextOrder, str]] = ..., dynamic_context_compression_ratio: _Optional[float] = ..., context_budget: _Optional[float] = ..., language: _Optional[str] = ..., fine_ratio: _Optional[float] = ..., rank_only: bool = ...) -> None: ...

class WordLabel(_message.Message):
    __slots__ = ("word", "kept")
    WORD_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    word: str
    kept: bool
    def __init__(self, word: _Optional[str] = ..., kept: bool = ...) -> None: ...

class CompressPromptResponse(_message.Message):
    __slots__ = ("compressed_prompt", "compressed_prompt_list", "origin_tokens", "compressed_tokens", "ratio", "rate", "word_labels", "kept_contexts", "model")
    COMPRESSED_PROMPT_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_PROMPT_LIST_FIELD_NUMBER: _ClassVar[int]
    ORIGIN_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    RATIO_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    WORD_LABELS_FIELD_NUMBER: _ClassVar[int]
    KEPT_CONTEXTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    compressed_prompt: str
    compressed_prompt_list: _containers.RepeatedScalarFieldContainer[str]
    origin_tokens: int
    compressed_tokens: int
    ratio: float
    rate: float
    word_labels: _containers.RepeatedCompositeFieldContainer[WordLabel]
    kept_contexts: _containers.RepeatedScalarFieldContainer[int]
    model: _common_pb2.ModelRef
    def __init__(self, compressed_prompt: _Optional[str] = ..., compressed_prompt_list: _Optional[_Iterable[str]] = ..., origin_tokens: _Optional[int] = ..., compressed_tokens: _Optional[int] = ..., ratio: _Optional[float] = ..., rate: _Optional[float] = ..., word_labels: _Optional[_Iterable[_Union[WordLabel, _Mapping]]] = ..., kept_contexts: _Optional[_Iterable[int]] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ...) -> None: ...

class CompressPromptBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[CompressPromptRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[CompressPromptRequest, _Mapping]]] = ...) -> None: ...

class CompressPromptBatchResponse(_message.Message):
    __slots__ = ("responses",)
    RESPONSES_FIELD_NUMBER: _ClassVar[int]
    responses: _containers.RepeatedCompositeFieldContainer[CompressPromptResponse]
    def __init__(self, responses: _Optional[_Iterable[_Union[CompressPromptResponse, _Mapping]]] = ...) -> None: ...

class Document(_message.Message):
    __slots__ = ("id", "title", "text")
    ID_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    id: str
    title: str
    text: str
    def __init__(self, id: _Optional[str] = ..., title: _Optional[str] = ..., text: _Optional[str] = ...) -> None: ...

class CompressContextRequest(_message.Message):
    __slots__ = ("query", "documents", "top_k_sentences", "target_tokens", "min_score", "model", "then_compress", "compress_model", "mode", "window")
    QUERY_FIELD_NUMBER: _ClassVar[int]
    DOCUMENTS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_SENTENCES_FIELD_NUMBER: _ClassVar[int]
    TARGET_TOKENS_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    THEN_COMPRESS_FIELD_NUMBER: _ClassVar[int]
    COMPRESS_MODEL_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    query: str
    documents: _containers.RepeatedCompositeFieldContainer[Document]
    top_k_sentences: int
    target_tokens: int
    min_score: float
    model: _common_pb2.ModelRef
    then_compress: PromptOptions
    compress_model: _common_pb2.ModelRef
    mode: SelectionMode
    window: int
    def __init__(self, query: _Optional[str] = ..., documents: _Optional[_Iterable[_Union[Document, _Mapping]]] = ..., top_k_sentences: _Optional[int] = ..., target_tokens: _Optional[int] = ..., min_score: _Optional[float] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., then_compress: _Optional[_Union[PromptOptions, _Mapping]] = ..., compress_model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., mode: _Optional[_Union[SelectionMode, str]] = ..., window: _Optional[int] = ...) -> None: ...

class SelectedSentence(_message.Message):
    __slots__ = ("document_id", "sentence_index", "text", "score")
    DOCUMENT_ID_FIELD_NUMBER: _ClassVar[int]
    SENTENCE_INDEX_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    document_id: str
    sentence_index: int
    text: str
    score: float
    def __init__(self, document_id: _Optional[str] = ..., sentence_index: _Optional[int] = ..., text: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class CompressContextResponse(_message.Message):
    __slots__ = ("compressed_context", "sentences", "original_tokens", "compressed_tokens", "compression_ratio", "model", "selected_tokens", "sentences_scored")
    COMPRESSED_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_FIELD_NUMBER: _ClassVar[int]
    ORIGINAL_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    COMPRESSION_RATIO_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SELECTED_TOKENS_FIELD_NUMBER: _ClassVar[int]
    SENTENCES_SCORED_FIELD_NUMBER: _ClassVar[int]
    compressed_context: str
    sentences: _containers.RepeatedCompositeFieldContainer[SelectedSentence]
    original_tokens: int
    compressed_tokens: int
    compression_ratio: float
    model: _common_pb2.ModelRef
    selected_tokens: int
    sentences_scored: int
    def __init__(self, compressed_context: _Optional[str] = ..., sentences: _Optional[_Iterable[_Union[SelectedSentence, _Mapping]]] = ..., original_tokens: _Optional[int] = ..., compressed_tokens: _Optional[int] = ..., compression_ratio: _Optional[float] = ..., model: _Optional[_Union[_common_pb2.ModelRef, _Mapping]] = ..., selected_tokens: _Optional[int] = ..., sentences_scored: _Optional[int] = ...) -> None: ...
