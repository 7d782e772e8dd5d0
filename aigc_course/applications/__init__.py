"""Chapter 6's applications, one module each: :mod:`~aigc_course.applications.support`
(a customer-service FAQ answered by retrieval, generation and both) and
:mod:`~aigc_course.applications.practice` (practice problems: generate, then verify).
"""
