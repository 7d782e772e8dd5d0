"""Chapter 6's applications, one module each: :mod:`~aigc_course.applications.support`
(a customer-service FAQ answered by retrieval, generation and both),
:mod:`~aigc_course.applications.practice` (practice problems: generate, then verify),
:mod:`~aigc_course.applications.news` (match reports from a results table, checked for
faithfulness) and :mod:`~aigc_course.applications.marketing` (product blurbs, checked for
hallucinated claims); :mod:`~aigc_course.applications.words` holds the word-level vocabulary
the last two share.
"""
