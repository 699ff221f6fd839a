-- attach_predictions: copy one snapshot's churn predictions into customer_segments.
-- Grain: customer_segments rows of snapshot $as_of, matched on customer_id to churn_predictions of $as_of.
-- {assignments} is the list of prediction columns ("col" = predictions."col"), built from the validated
-- prediction settings; customers without a prediction (non-buyers) were set to null just before.
update customer_segments as segments
set {assignments}
from churn_predictions as predictions
where segments.snapshot_date = $as_of
  and predictions.snapshot_date = $as_of
  and segments.customer_id = predictions.customer_id
