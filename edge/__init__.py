"""Troy's edge: the code that answers a site's visitors (CloudFront Function, Lambda@Edge origin
handler, the manifest they share, and the local edge that runs the same code). Pure Python and
JavaScript, no Django: the origin handler is shipped to Lambda@Edge as it is. See docs/edge.md."""
